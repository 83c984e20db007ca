"""MAR: Masked Autoregressive image generation with a per-token diffusion head (Li et al., 2024).

The network only maps (known tokens, condition) to the conditioning vectors z of every position; it knows nothing
about sampling orders or schedules, which live in :mod:`gtr.sampling`. Module and parameter names, shapes and
numerics follow the official implementation (LTH14/mar, ``models/mar.py``) so its checkpoints load strictly.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn as nn

from gtr.errors import GtRError
from gtr.models.cached import CachedPasses
from gtr.models.diffusion_head import DiffusionHead


@dataclass(frozen=True)
class TokenGridConfig:
    """How images become a square grid of tokens: VAE downsampling, then patch x patch latent cells per token."""
    img_size: int = 256
    vae_stride: int = 16
    patch_size: int = 1
    vae_embed_dim: int = 16

    @property
    def seq_h(self) -> int:
        return self.img_size // self.vae_stride // self.patch_size

    @property
    def token_dim(self) -> int:
        return self.vae_embed_dim * self.patch_size**2


def replace_checked(base, overrides: dict, what: str):
    """``dataclasses.replace`` with a one-line error naming the valid hyperparameters."""
    fields = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise GtRError(f"unknown {what} hyperparameter(s) {', '.join(unknown)}: valid ones are "
                       f"{', '.join(sorted(fields))}")
    return dataclasses.replace(base, **overrides)


@dataclass(frozen=True)
class MARConfig(TokenGridConfig):
    encoder_embed_dim: int = 1024
    encoder_depth: int = 16
    encoder_num_heads: int = 16
    decoder_embed_dim: int = 1024
    decoder_depth: int = 16
    decoder_num_heads: int = 16
    mlp_ratio: float = 4.0
    norm_eps: float = 1e-6
    class_num: int = 1000
    buffer_size: int = 64  # class-embedding copies prepended to the encoder sequence
    diffloss_d: int = 3
    diffloss_w: int = 1024
    attn_dropout: float = 0.1
    proj_dropout: float = 0.1


def known_positions(known: torch.Tensor) -> torch.Tensor:
    """Ascending raster positions [B, k] of the known tokens of ``known`` [B, N] (bool), which must have the same
    count k in every row (the encoder drops the unknown tokens, as the official code does)."""
    b = known.shape[0]
    counts = known.sum(dim=1)
    if b and bool((counts != counts[0]).any()):
        raise ValueError("every image in a batch must have the same number of known tokens")
    return known.nonzero()[:, 1].view(b, -1)


class MAR(CachedPasses, nn.Module):
    guidance_site = "decoder"  # LazyMAR's released code takes the CFG difference before decoder_norm

    def __init__(self, config: MARConfig):
        from timm.models.vision_transformer import Block
        super().__init__()
        c = self.config = config
        if c.encoder_embed_dim != c.decoder_embed_dim:
            raise GtRError("MAR needs encoder_embed_dim == decoder_embed_dim (the decoder embeds encoder outputs "
                           "with a square Linear in the official checkpoints)")
        self.seq_h = self.seq_w = c.seq_h
        self.seq_len = self.seq_h * self.seq_w
        self.token_dim = c.token_dim
        self.buffer_size = c.buffer_size
        width = c.encoder_embed_dim
        norm = partial(nn.LayerNorm, eps=c.norm_eps)

        def blocks(depth: int, heads: int) -> nn.ModuleList:
            return nn.ModuleList(
                Block(width, heads, c.mlp_ratio, qkv_bias=True, norm_layer=norm, proj_drop=c.proj_dropout,
                      attn_drop=c.attn_dropout)
                for _ in range(depth)
            )

        # Registration order reproduces the official state-dict key order.
        self.class_emb = nn.Embedding(c.class_num, width)
        self.fake_latent = nn.Parameter(torch.zeros(1, width))  # the "no class" embedding used by CFG
        self.z_proj = nn.Linear(self.token_dim, width)
        self.z_proj_ln = norm(width)
        self.encoder_pos_embed_learned = nn.Parameter(torch.zeros(1, self.seq_len + c.buffer_size, width))
        self.encoder_blocks = blocks(c.encoder_depth, c.encoder_num_heads)
        self.encoder_norm = norm(width)

        self.decoder_embed = nn.Linear(width, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.decoder_pos_embed_learned = nn.Parameter(torch.zeros(1, self.seq_len + c.buffer_size, width))
        self.decoder_blocks = blocks(c.decoder_depth, c.decoder_num_heads)
        self.decoder_norm = norm(width)
        self.diffusion_pos_embed_learned = nn.Parameter(torch.zeros(1, self.seq_len, width))
        self.initialize_weights()

        # Named "diffloss" for the official keys (diffloss.net.*); initialised by its own rule, after the rest.
        self.diffloss = DiffusionHead(self.token_dim, width, c.diffloss_d, c.diffloss_w)
        self.diffloss.net.initialize_weights()

    def initialize_weights(self) -> None:
        """The official initialisation of the transformer part."""
        for p in (self.class_emb.weight, self.fake_latent, self.mask_token, self.encoder_pos_embed_learned,
                  self.decoder_pos_embed_learned, self.diffusion_pos_embed_learned):
            nn.init.normal_(p, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    # ----------------------------------------------------------------------------------------------------------
    # Conditioning: the executor only sees opaque per-image condition tensors, so text-to-image models fit the
    # same sampler code.
    def condition(self, labels: torch.Tensor) -> torch.Tensor:
        """Class embeddings [B, D] for integer labels [B]."""
        labels = torch.as_tensor(labels, device=self.class_emb.weight.device)
        if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
            raise GtRError(f"class labels must be integers, got {labels.dtype} labels "
                           f"({labels.flatten()[:3].tolist()}...): pass integer class indices, e.g. [207, 360]")
        num = self.config.class_num
        if labels.numel() and (labels.min() < 0 or labels.max() >= num):
            bad = labels[(labels < 0) | (labels >= num)][0].item()
            raise GtRError(f"class label {bad} is outside [0, {num}) for this model: use labels 0..{num - 1}")
        return self.class_emb(labels.long())

    def null_condition(self, batch_size: int) -> torch.Tensor:
        """The unconditional embedding for classifier-free guidance."""
        return self.fake_latent.expand(batch_size, -1)

    # ----------------------------------------------------------------------------------------------------------
    def patchify(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] latents -> [B, N, C*p*p] tokens in raster order."""
        b, ch, h, w = latents.shape
        p = self.config.patch_size
        x = latents.reshape(b, ch, h // p, p, w // p, p)
        return torch.einsum("nchpwq->nhwcpq", x).reshape(b, (h // p) * (w // p), ch * p * p)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, N, C*p*p] tokens -> [B, C, H, W] latents."""
        b = tokens.shape[0]
        p, ch, h = self.config.patch_size, self.config.vae_embed_dim, self.seq_h
        x = tokens.reshape(b, h, h, ch, p, p)
        return torch.einsum("nhwcpq->nchpwq", x).reshape(b, ch, h * p, h * p)

    # ----------------------------------------------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, known: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Conditioning vectors z [B, N, D] for every position, from the known tokens.

        tokens [B, N, C]; known [B, N] bool, with the same number of known tokens in every row (the encoder drops
        the unknown ones, as the official code does); cond [B, D] from :meth:`condition` or :meth:`null_condition`.
        """
        return self.forward_known(tokens, known_positions(known), cond)

    known_positions = staticmethod(known_positions)

    def forward_known(self, tokens: torch.Tensor, known_idx: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` given the raster positions [B, k] of the known tokens (:func:`known_positions`): a
        function of tensor shapes only, which ``mode=compile`` compiles as one graph."""
        return self.forward_decoder(self.forward_encoder(tokens, known_idx, cond), known_idx)

    def forward_encoder(self, tokens: torch.Tensor, known_idx: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        b, buf = tokens.shape[0], self.buffer_size
        width = self.config.encoder_embed_dim
        # Only known tokens enter the encoder: projecting them after the gather is row-wise identical to the
        # official project-then-drop.
        known_tokens = torch.gather(tokens, 1, known_idx[..., None].expand(-1, -1, tokens.shape[-1]))
        pos = self.encoder_pos_embed_learned[0]
        buffer = cond[:, None, :].expand(b, buf, width) + pos[:buf]
        x = torch.cat([buffer, self.z_proj(known_tokens) + pos[buf + known_idx]], dim=1)
        x = self.z_proj_ln(x)
        for block in self.encoder_blocks:
            x = block(x)
        return self.encoder_norm(x)

    def forward_decoder(self, x: torch.Tensor, known_idx: torch.Tensor) -> torch.Tensor:
        b, buf = x.shape[0], self.buffer_size
        x = self.decoder_embed(x)
        # Scatter the encoder outputs (buffer + known tokens) into a full sequence of mask tokens.
        keep = torch.cat([torch.arange(buf, device=x.device).expand(b, buf), known_idx + buf], dim=1)
        full = self.mask_token.to(x.dtype).expand(b, buf + self.seq_len, -1).clone()
        full.scatter_(1, keep[..., None].expand(-1, -1, x.shape[-1]), x)
        x = full + self.decoder_pos_embed_learned
        for block in self.decoder_blocks:
            x = block(x)
        x = self.decoder_norm(x)
        return x[:, buf:] + self.diffusion_pos_embed_learned

    # ----------------------------------------------------------------------------------------------------------
    # What caches reuse (gtr.models.cached): a buffer of class tokens leads the encoder and the decoder.
    def encoder_queries(self, new_tokens: torch.Tensor, new_positions: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Encoder input rows of the buffer and of new tokens at raster positions ``new_positions`` [B, n]."""
        buf = self.buffer_size
        pos = self.encoder_pos_embed_learned[0]
        buffer = cond[:, None, :] + pos[:buf]
        return self.z_proj_ln(torch.cat([buffer, self.z_proj(new_tokens) + pos[buf + new_positions]], dim=1))

    def decoder_positions(self, rows: torch.Tensor) -> torch.Tensor:
        return self.decoder_pos_embed_learned[0][rows]

    def cached_output(self, out: torch.Tensor, cond: torch.Tensor, kept: torch.Tensor | None) -> torch.Tensor:
        """z [B, N, D] from the last decoder features [B, buf + N, D] (rows outside ``kept`` are never read)."""
        return self.decoder_norm(out)[:, self.buffer_size:] + self.diffusion_pos_embed_learned
