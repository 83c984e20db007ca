"""LightGen (Wu et al., 2025; XianfengWu01/LightGen ``models/fluid_arbitrary.py``, class ``FLUID``): MAR's encoder
and decoder without class tokens, then cross-attention blocks from every image position to the projected T5 text
(the text path), then MAR's diffusion head. Module and parameter names follow the official checkpoints so they load
strictly; the facts are in docs/lightgen_geneval.md Sec. 1.

The executor sees the same contract as MAR: ``condition(texts)`` (the raw T5 ``last_hidden_state`` [B, L, 4096],
padding rows included and unmasked, as the official code feeds them) returns the projected text [B, L, D] once per
sampling run, ``null_condition(B)`` the learned ``fake_latent`` broadcast over the L text positions, and
``forward(tokens, known, cond)`` the conditioning vectors z of every image position.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from gtr.errors import GtRError
from gtr.models.cached import CachedPasses
from gtr.models.diffusion_head import DiffusionHead
from gtr.models.mar import MAR, TokenGridConfig, known_positions


@dataclass(frozen=True)
class LightGenConfig(TokenGridConfig):
    img_size: int = 512  # generation resolution (the official module is told it per call; here per model)
    vae_stride: int = 8
    patch_size: int = 2
    width: int = 1024  # encoder, decoder and cross blocks share it (the official code needs them equal)
    encoder_depth: int = 16
    encoder_num_heads: int = 16
    decoder_depth: int = 16
    decoder_num_heads: int = 16
    cross_depth: int = 16
    cross_num_heads: int = 16
    text_depth: int = 6  # text-aligner blocks (with the encoder's heads)
    mlp_ratio: float = 4.0
    norm_eps: float = 1e-6
    caption_channels: int = 4096  # T5-XXL hidden size
    max_length: int = 128  # text positions
    pos_grid: int = 16  # the learned position tables are 16x16 (a 256-px checkpoint), interpolated to the grid
    interpolate_offset: float = 0.1
    diffloss_d: int = 8
    diffloss_w: int = 1536
    attn_dropout: float = 0.1
    proj_dropout: float = 0.1


class CrossAttention(nn.Module):
    """Image positions (queries) attend to the text (keys and values from one ``kv`` projection)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.query_linear = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, query: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        b, n, c = query.shape
        heads = self.num_heads
        q = self.query_linear(query).reshape(b, n, heads, c // heads).transpose(1, 2)
        k, v = self.kv(text).reshape(b, text.shape[1], 2, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class CrossAttentionBlock(nn.Module):
    """The official ``Attention_Block(is_cross=True)``, whose residual starts from the *normalised* query."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, norm: type[nn.Module]):
        from timm.layers import Mlp
        super().__init__()
        self.normq = norm(dim)
        self.normkv = norm(dim)
        self.attn = CrossAttention(dim, num_heads)
        self.norm2 = norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        x = self.normq(x)
        x = x + self.attn(x, self.normkv(text))
        return x + self.mlp(self.norm2(x))


class TextEmbedding(nn.Module):
    """T5 features -> the cross-attention's keys/values: PixArt's projection, a few self-attention blocks, a norm."""

    def __init__(self, c: LightGenConfig, norm: type[nn.Module]):
        from diffusers.models.embeddings import PixArtAlphaTextProjection
        from timm.models.vision_transformer import Block
        super().__init__()
        self.text_proj = PixArtAlphaTextProjection(in_features=c.caption_channels, hidden_size=c.width)
        self.text_aligner = nn.ModuleList(
            Block(c.width, c.encoder_num_heads, c.mlp_ratio, qkv_bias=True, norm_layer=norm,
                  proj_drop=c.proj_dropout, attn_drop=c.attn_dropout) for _ in range(c.text_depth))
        self.text_aligner_norm = norm(c.width)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        x = self.text_proj(text)
        for block in self.text_aligner:
            x = block(x)
        return self.text_aligner_norm(x)


class LightGen(CachedPasses, nn.Module):
    """Caches (gtr.models.cached): no buffer; the encoder and decoder never see the text, which enters through the
    cross-attention blocks after the decoder, so a cache's pruned decoder hands those blocks only its kept positions
    and the CFG difference is taken on z."""
    buffer_size = 0
    guidance_site = "output"

    patchify = MAR.patchify
    unpatchify = MAR.unpatchify

    def __init__(self, config: LightGenConfig):
        from timm.models.vision_transformer import Block
        super().__init__()
        c = self.config = config
        if c.img_size % (c.vae_stride * c.patch_size):
            raise GtRError(f"img_size {c.img_size} is not a multiple of vae_stride x patch_size = "
                           f"{c.vae_stride * c.patch_size}")
        self.seq_h = self.seq_w = c.seq_h
        self.seq_len = self.seq_h * self.seq_w
        self.token_dim = c.token_dim
        width, tables = c.width, c.pos_grid**2
        norm = partial(nn.LayerNorm, eps=c.norm_eps)

        def blocks(depth: int, heads: int) -> nn.ModuleList:
            return nn.ModuleList(Block(width, heads, c.mlp_ratio, qkv_bias=True, norm_layer=norm,
                                       proj_drop=c.proj_dropout, attn_drop=c.attn_dropout) for _ in range(depth))

        # Registration order reproduces the official state-dict key order (own parameters first, then modules).
        self.last_pos_embed_learned = nn.Parameter(torch.zeros(1, tables, width))
        self.fake_latent = nn.Parameter(torch.zeros(1, 1, width))
        self.encoder_pos_embed_learned = nn.Parameter(torch.zeros(1, tables, width))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.decoder_pos_embed_learned = nn.Parameter(torch.zeros(1, tables, width))
        self.last_embed = nn.Linear(width, width)
        self.text_emb = TextEmbedding(c, norm)
        self.cross_attn_blocks = nn.ModuleList(CrossAttentionBlock(width, c.cross_num_heads, c.mlp_ratio, norm)
                                               for _ in range(c.cross_depth))
        self.cross_norm = norm(width)
        self.z_proj = nn.Linear(self.token_dim, width)
        self.z_proj_ln = nn.LayerNorm(width, eps=1e-6)
        self.encoder_blocks = blocks(c.encoder_depth, c.encoder_num_heads)
        self.encoder_norm = norm(width)
        self.decoder_embed = nn.Linear(width, width)
        self.decoder_blocks = blocks(c.decoder_depth, c.decoder_num_heads)
        self.decoder_norm = norm(width)
        self.diffloss = DiffusionHead(self.token_dim, width, c.diffloss_d, c.diffloss_w)

    # ----------------------------------------------------------------------------------------------------------
    def condition(self, texts: torch.Tensor) -> torch.Tensor:
        """Projected text [B, L, D] from T5 features [B, L, caption_channels]."""
        texts = torch.as_tensor(texts, device=self.fake_latent.device)
        expected = (self.config.max_length, self.config.caption_channels)
        if texts.ndim != 3 or tuple(texts.shape[1:]) != expected:
            raise GtRError(f"text features of shape {tuple(texts.shape)} do not fit this model: expected "
                           f"[B, {expected[0]}, {expected[1]}] (T5 last_hidden_state padded to max_length)")
        return self.text_emb(texts.float())

    def null_condition(self, batch_size: int) -> torch.Tensor:
        return self.fake_latent.expand(batch_size, self.config.max_length, -1)

    def position_table(self, table: nn.Parameter) -> torch.Tensor:
        """A learned 16x16 table at this grid: bicubic with the official scale factor (grid + offset) / 16."""
        m = self.config.pos_grid
        if self.seq_len == m * m:
            return table[0]
        scale = (self.seq_h + self.config.interpolate_offset) / m
        grid = table.float().reshape(1, m, m, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, mode="bicubic", scale_factor=(scale, scale))
        return grid.permute(0, 2, 3, 1).reshape(self.seq_len, -1)

    # ----------------------------------------------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, known: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Conditioning vectors z [B, N, D] from the known tokens (the same count in every row) and the text
        condition [B, L, D]."""
        return self.forward_known(tokens, known_positions(known), cond)

    known_positions = staticmethod(known_positions)

    def forward_known(self, tokens: torch.Tensor, known_idx: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` given the raster positions [B, k] of the known tokens (what ``mode=compile`` compiles)."""
        return self.forward_text(self.forward_decoder(self.forward_encoder(tokens, known_idx), known_idx), cond)

    def forward_encoder(self, tokens: torch.Tensor, known_idx: torch.Tensor) -> torch.Tensor:
        """The encoder on the known tokens only (projected after the gather: row-wise the same as the official
        order), then the decoder embedding: [B, k, D]."""
        known_tokens = torch.gather(tokens, 1, known_idx[..., None].expand(-1, -1, tokens.shape[-1]))
        x = self.z_proj_ln(self.z_proj(known_tokens) + self.position_table(self.encoder_pos_embed_learned)[known_idx])
        if x.shape[1]:  # at the first step nothing is known: an empty sequence
            for block in self.encoder_blocks:
                x = block(x)
        return self.decoder_embed(self.encoder_norm(x))

    def forward_decoder(self, x: torch.Tensor, known_idx: torch.Tensor) -> torch.Tensor:
        """Mask tokens everywhere but the known positions, position embedding, decoder blocks: [B, N, D] (before
        ``decoder_norm``)."""
        b, width = x.shape[0], self.config.width
        full = self.mask_token.to(x.dtype).expand(b, self.seq_len, width).clone()
        full.scatter_(1, known_idx[..., None].expand(-1, -1, width), x)
        x = full + self.position_table(self.decoder_pos_embed_learned)
        for block in self.decoder_blocks:
            x = block(x)
        return x

    def forward_text(self, x: torch.Tensor, cond: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Where the text enters: ``last_embed``, the cross-attention blocks (image queries, text keys/values), the
        final norm: z [B, N, D]. With ``positions`` [B, n], x holds only those rows (image positions do not interact
        here, so any subset gives the same rows as the whole)."""
        table = self.position_table(self.last_pos_embed_learned)
        x = self.last_embed(self.decoder_norm(x)) + (table if positions is None else table[positions])
        for block in self.cross_attn_blocks:
            x = block(x, cond)
        return self.cross_norm(x)

    # ----------------------------------------------------------------------------------------------------------
    def encoder_queries(self, new_tokens: torch.Tensor, new_positions: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        table = self.position_table(self.encoder_pos_embed_learned)
        return self.z_proj_ln(self.z_proj(new_tokens) + table[new_positions])

    def decoder_positions(self, rows: torch.Tensor) -> torch.Tensor:
        return self.position_table(self.decoder_pos_embed_learned)[rows]

    def cached_output(self, out: torch.Tensor, cond: torch.Tensor, kept: torch.Tensor | None) -> torch.Tensor:
        """z at the kept positions (all when ``kept`` is None), zeros elsewhere (never read)."""
        if kept is None:
            return self.forward_text(out, cond)
        rows = kept[..., None].expand(-1, -1, out.shape[-1])
        z = self.forward_text(torch.gather(out, 1, rows), cond, kept)
        return torch.zeros_like(out).scatter(1, rows, z.to(out.dtype))


def initialize_official(model: LightGen) -> LightGen:
    """Random weights as the official initialisation (positions and tokens N(0, 0.02), the head's own init)."""
    for p in (model.last_pos_embed_learned, model.fake_latent, model.encoder_pos_embed_learned, model.mask_token,
              model.decoder_pos_embed_learned):
        nn.init.normal_(p, std=0.02)
    model.diffloss.net.initialize_weights()
    return model


__all__ = ["LightGen", "LightGenConfig", "initialize_official"]
