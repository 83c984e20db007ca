"""LazyMAR (Yan et al., ICCV 2025): MAR's schedule, with computation reused across AR steps and diffusion steps.

Mechanics and defaults follow the released code (feihongyan1/LazyMAR; shared notes baselines_flops.md Sec. 1.4):

- **Full AR steps** (``s < start_step`` or ``(s - start_step) % refresh_every == 0``) run the model as MAR does, for
  both CFG halves, and fill the caches.
- **Token cache** (other AR steps, conditional half only). The encoder's queries are the buffer and the tokens
  decoded at the previous step; every other known token's keys and values come from a per-layer cache, to which the
  new ones are appended. The decoder's inputs change only at those positions. Decoder layers up to ``prune_layer``
  run on every position (all layers do in a decoder of at most ``prune_layer`` layers); after that layer's
  attention only the ``keep_count`` positions whose values changed most
  since the previous step (lowest cosine similarity of V, averaged over heads; the positions predicted now and at
  the previous step always kept) go on, attending to keys and values cached for the others.
- **Condition cache.** The unconditional branch is not run: its last decoder features are the conditional ones plus
  the difference stored at the last full step.
- **Diffusion-head cache** (in the released code, always on). In each diffusion loop, evaluation i (counted down
  from T - 1) is full if ``i == T - 1`` or ``i % head_refresh_every == 0``: both CFG halves, every block, caching
  each block's MLP output, the residual deltas of ``head_delta_blocks`` and the CFG difference of eps. Otherwise the
  conditional half alone runs: the delta blocks add their cached delta, the others recompute adaLN and reuse the
  cached MLP output (recomputed while ``i > head_recompute_above * T``), and eps_uncond = eps_cond - cached difference.

With every step full (``start_step`` past the last AR step, ``head_refresh_every=1``) the result equals MAR's.
On LightGen the same caches run as our port (:class:`LightGenView`), which the Table 2 rows label as such.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from gtr.errors import GtRError
from gtr.models.diffusion import p_sample_loop, respaced_timesteps
from gtr.models.diffusion_head import guided, modulate
from gtr.models.lightgen import LightGen
from gtr.models.mar import MAR
from gtr.sampling.mar import MARSampler
from gtr.sampling.runner import ModelRunner

# The released code's keep ratios, indexed by the raw AR step (not rescaled to num_iter; the last holds beyond 64).
KEEP_RATIOS = (1.0,) * 20 + (0.6,) + (0.5,) * 4 + (0.4,) * 5 + (0.15,) * 5 + (0.12,) * 5 + (0.05,) * 24


@dataclass
class LazyMARSampler(MARSampler):
    start_step: int = 5
    refresh_every: int = 9
    keep_ratios: Sequence[float] = KEEP_RATIOS
    prune_layer: int = 3
    keep_margin: int = 15
    head_cache: bool = True
    head_refresh_every: int = 7
    head_recompute_above: float = 0.9
    head_delta_blocks: Sequence[int] = (1, 2, 3, 4)
    name = "lazymar"

    def __post_init__(self):
        super().__post_init__()
        self.keep_ratios, self.head_delta_blocks = tuple(self.keep_ratios), tuple(self.head_delta_blocks)
        if self.start_step < 1 or self.refresh_every < 1 or self.head_refresh_every < 1:
            raise GtRError("lazymar: start_step, refresh_every and head_refresh_every must be >= 1 (the first AR "
                           "step always fills the caches)")
        if self.prune_layer < 0:
            raise GtRError(f"lazymar: prune_layer must be >= 0, got {self.prune_layer}")
        if not self.keep_ratios or not all(0 < r <= 1 for r in self.keep_ratios):
            raise GtRError(f"lazymar: keep_ratios must be fractions in (0, 1], got {list(self.keep_ratios)}")

    def full_step(self, index: int) -> bool:
        return index < self.start_step or (index - self.start_step) % self.refresh_every == 0

    def keep_count(self, index: int, num_predicted: int, num_previous: int, length: int) -> int:
        """Decoder positions kept after ``prune_layer`` at a cached AR step, out of ``length`` (buffer included)."""
        ratio = self.keep_ratios[min(index, len(self.keep_ratios) - 1)]
        return min(length, max(num_predicted + num_previous + self.keep_margin, int(length * ratio)))

    def head_full(self, i: int, total: int) -> bool:
        return i == total - 1 or i % self.head_refresh_every == 0

    def head_recompute(self, i: int, total: int) -> bool:
        return i > self.head_recompute_above * total

    def runner(self, model: torch.nn.Module) -> ModelRunner:
        return LazyMARRunner(model, self)


# ---------------------------------------------------------------------------------------------------------------
# The pieces of a cached step, as functions of explicit tensors: the runner calls them, and the FLOPs counter runs
# them on the meta device to count exactly what a cached step computes.

def heads(block, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v [B, H, N, hd] from the output [B, N, 3D] of a timm ``Block``'s ``attn.qkv``."""
    attn = block.attn
    b, n, _ = qkv.shape
    q, k, v = qkv.reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    return attn.q_norm(q), attn.k_norm(k), v


def split_qkv(block, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v of the block's attention for its normalised input x [B, N, D]."""
    return heads(block, block.attn.qkv(x))


def attend(block, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The rest of the block's attention (as timm's ``Attention.forward``), for queries q against keys/values k, v."""
    attn = block.attn
    b, _, n, _ = q.shape
    x = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, -1)
    return block.ls1(attn.proj(attn.norm(x)))


def feed_forward(block, x: torch.Tensor) -> torch.Tensor:
    return block.ls2(block.mlp(block.norm2(x)))


def cached_encoder(model, new_tokens: torch.Tensor, new_positions: torch.Tensor, cond: torch.Tensor,
                   keys: list, values: list) -> torch.Tensor:
    """MAR: decoder inputs (before the position embedding) of the buffer and the newly known tokens [B, buf + n, D]:
    only they are queries; ``keys``/``values`` [B, H, buf + k, hd] per layer are updated in place (buffer replaced,
    new tokens appended)."""
    buf = model.buffer_size
    pos = model.encoder_pos_embed_learned[0]
    buffer = cond[:, None, :] + pos[:buf]
    x = model.z_proj_ln(torch.cat([buffer, model.z_proj(new_tokens) + pos[buf + new_positions]], dim=1))
    return encode_with_cache(model, x, buf, keys, values)


def encode_with_cache(model, x: torch.Tensor, buf: int, keys: list, values: list) -> torch.Tensor:
    """The encoder blocks for the queries x [B, buf + n, D] (``buf`` leading rows replace the cached buffer, the n
    others are appended to the cache), then the encoder norm and decoder embedding."""
    for layer, block in enumerate(model.encoder_blocks):
        q, k, v = split_qkv(block, block.norm1(x))
        keys[layer] = torch.cat([k[:, :, :buf], keys[layer][:, :, buf:], k[:, :, buf:]], dim=2)
        values[layer] = torch.cat([v[:, :, :buf], values[layer][:, :, buf:], v[:, :, buf:]], dim=2)
        x = x + attend(block, q, keys[layer], values[layer])
        x = x + feed_forward(block, x)
    return model.decoder_embed(model.encoder_norm(x))


def cached_decoder(model, x: torch.Tensor, keys: list, values: list, forced: torch.Tensor, keep: int,
                   prune_layer: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Last decoder-block features [B, L, D] (before ``decoder_norm``) at the kept positions, zeros elsewhere (never
    read), and the kept positions [B, keep] (None: all). x [B, L, D]: the decoder input; ``forced`` [B, f]:
    positions always kept; ``keys``/``values`` per layer [B, H, L, hd], updated in place."""
    for layer, block in enumerate(model.decoder_blocks[:prune_layer + 1]):
        q, k, v = split_qkv(block, block.norm1(x))
        previous_v = values[layer]
        keys[layer], values[layer] = k, v
        x = x + attend(block, q, k, v)
        if layer < prune_layer:
            x = x + feed_forward(block, x)
    if prune_layer >= len(model.decoder_blocks):  # a decoder too shallow to prune: every position runs
        return x, None
    similarity = F.cosine_similarity(values[prune_layer].float(), previous_v.float(), dim=-1).mean(dim=1)  # [B, L]
    similarity = similarity.scatter(1, forced, 0.0)  # the released code zeroes the forced scores and keeps the lowest
    kept = similarity.argsort(dim=1, stable=True)[:, :keep].sort(dim=1).values  # [B, keep]
    rows = kept[..., None].expand(-1, -1, x.shape[-1])
    h = torch.gather(x, 1, rows)
    h = h + feed_forward(model.decoder_blocks[prune_layer], h)
    heads = kept[:, None, :, None].expand(-1, keys[0].shape[1], -1, keys[0].shape[-1])
    for layer in range(prune_layer + 1, len(model.decoder_blocks)):
        block = model.decoder_blocks[layer]
        q, k, v = split_qkv(block, block.norm1(h))
        keys[layer] = keys[layer].scatter(2, heads, k.to(keys[layer].dtype))
        values[layer] = values[layer].scatter(2, heads, v.to(values[layer].dtype))
        h = h + attend(block, q, keys[layer], values[layer])
        h = h + feed_forward(block, h)
    return torch.zeros_like(x).scatter(1, rows, h.to(x.dtype)), kept


@dataclass
class HeadCache:
    """What a full diffusion-head evaluation leaves for the cached ones of the same loop (conditional rows)."""
    mlp: dict = field(default_factory=dict)
    delta: dict = field(default_factory=dict)
    cfg_delta: torch.Tensor | None = None


def cached_head(net, x: torch.Tensor, t: torch.Tensor, c_emb: torch.Tensor, cache: HeadCache, full: bool,
                recompute_mlp: bool, delta_blocks: Sequence[int], rows: int) -> torch.Tensor:
    """One evaluation of the diffusion MLP [eps, v] with LazyMAR's block cache; ``rows``: how many leading rows are
    the conditional ones whose MLP outputs and deltas are cached."""
    y = net.time_embed(t.reshape(-1)) + c_emb
    h = net.input_proj(x)
    for j, block in enumerate(net.res_blocks):
        if not full and j in delta_blocks:
            h = h + cache.delta[j]
            continue
        shift, scale, gate = block.adaLN_modulation(y).chunk(3, dim=-1)
        if full or recompute_mlp:
            mlp = block.mlp(modulate(block.in_ln(h), shift, scale))
            cache.mlp[j] = mlp[:rows]
        else:
            mlp = cache.mlp[j]
        new = h + gate * mlp
        if full and j in delta_blocks:
            cache.delta[j] = (new - h)[:rows]
        h = new
    return net.final_layer(h, y)


class MARView:
    """Where LazyMAR's caches sit in MAR (the released code): a buffer of class tokens leads the encoder and decoder,
    and the CFG difference is taken on the last decoder block's output (before ``decoder_norm``)."""
    delta_on_decoder = True

    def __init__(self, model: MAR):
        self.model, self.buffer_size = model, model.buffer_size

    def encode(self, new_tokens, new_positions, cond, keys, values):
        return cached_encoder(self.model, new_tokens, new_positions, cond, keys, values)

    def decoder_positions(self, rows: torch.Tensor) -> torch.Tensor:
        return self.model.decoder_pos_embed_learned[0][rows]

    def finish(self, out: torch.Tensor, cond: torch.Tensor, kept: torch.Tensor | None) -> torch.Tensor:
        return self.model.decoder_norm(out)[:, self.buffer_size:] + self.model.diffusion_pos_embed_learned


class LightGenView:
    """Our port of LazyMAR to LightGen (its released code supports MAR only). LightGen's encoder and decoder never see
    the text, which enters through the cross-attention blocks after the decoder; so the token cache covers encoder
    and decoder as in MAR (no buffer), the cross-attention blocks run on the positions the pruned decoder kept (as
    the decoder's last layers do), and the condition cache takes the CFG difference on the final z (unconditional =
    conditional + the difference stored at the last full step)."""
    delta_on_decoder = False
    buffer_size = 0

    def __init__(self, model: LightGen):
        self.model = model
        self.tables = {name: model.position_table(getattr(model, name)) for name in
                       ("encoder_pos_embed_learned", "decoder_pos_embed_learned")}

    def encode(self, new_tokens, new_positions, cond, keys, values):
        m = self.model
        x = m.z_proj_ln(m.z_proj(new_tokens) + self.tables["encoder_pos_embed_learned"][new_positions])
        return encode_with_cache(m, x, 0, keys, values)

    def decoder_positions(self, rows: torch.Tensor) -> torch.Tensor:
        return self.tables["decoder_pos_embed_learned"][rows]

    def finish(self, out: torch.Tensor, cond: torch.Tensor, kept: torch.Tensor | None) -> torch.Tensor:
        """z at the kept positions (all when ``kept`` is None), zeros elsewhere (never read)."""
        if kept is None:
            return self.model.forward_text(out, cond)
        rows = kept[..., None].expand(-1, -1, out.shape[-1])
        z = self.model.forward_text(torch.gather(out, 1, rows), cond, kept)
        return torch.zeros_like(out).scatter(1, rows, z.to(out.dtype))


class LazyMARRunner(ModelRunner):
    """Holds LazyMAR's caches for one sampling run."""

    def __init__(self, model: torch.nn.Module, sampler: LazyMARSampler):
        super().__init__(model)
        if isinstance(model, MAR):
            self.view = MARView(model)
        elif isinstance(model, LightGen):
            self.view = LightGenView(model)
        else:
            raise GtRError(f"lazymar runs on MAR and LightGen models, not {type(model).__name__}")
        self.sampler = sampler
        self.previous: torch.Tensor | None = None  # positions predicted at the previous AR step [B, n]
        self.enc_keys, self.enc_values, self.dec_keys, self.dec_values = [], [], [], []
        self.dec_input: torch.Tensor | None = None  # decoder input of the conditional half [B, L, D]
        self.cond_delta: torch.Tensor | None = None  # unconditional - conditional, where the view takes it

    def transformer(self, index, tokens, known, cond, positions):
        b = positions.shape[0]
        if self.previous is None or self.sampler.full_step(index):
            z = self._full(tokens, known, cond, b)
        else:
            z = self._cached(index, tokens[:b], cond[:b], positions, with_cfg=tokens.shape[0] > b)
        self.previous = positions
        return z

    def _full(self, tokens, known, cond, b):
        """The model's own forward; hooks keep the conditional half's keys/values, decoder input and the CFG delta."""
        m, seen = self.model, {}

        def keep_qkv(name):
            def hook(module, args, out):
                seen[name] = out[:b]
            return hook

        handles = [blk.attn.qkv.register_forward_hook(keep_qkv(("enc", i))) for i, blk in enumerate(m.encoder_blocks)]
        handles += [blk.attn.qkv.register_forward_hook(keep_qkv(("dec", i))) for i, blk in enumerate(m.decoder_blocks)]
        handles.append(m.decoder_blocks[0].register_forward_pre_hook(lambda mod, args: seen.update(dec_in=args[0])))
        handles.append(m.decoder_norm.register_forward_pre_hook(lambda mod, args: seen.update(dec_out=args[0])))
        try:
            z = m(tokens, known, cond)
        finally:
            for handle in handles:
                handle.remove()

        # LightGen's encoder does not run while nothing is known: its caches start empty.
        nothing = seen["dec_in"].new_zeros(b, 0, 3 * seen["dec_in"].shape[-1])
        enc = [heads(blk, seen.get(("enc", i), nothing)) for i, blk in enumerate(m.encoder_blocks)]
        dec = [heads(blk, seen["dec", i]) for i, blk in enumerate(m.decoder_blocks)]
        self.enc_keys, self.enc_values = [k for _, k, _ in enc], [v for _, _, v in enc]
        self.dec_keys, self.dec_values = [k for _, k, _ in dec], [v for _, _, v in dec]
        self.dec_input = seen["dec_in"][:b]
        out = seen["dec_out"] if self.view.delta_on_decoder else z
        self.cond_delta = out[b:] - out[:b] if out.shape[0] > b else None
        return z

    def _cached(self, index, tokens, cond, positions, with_cfg: bool):
        s, view, prev = self.sampler, self.view, self.previous
        b, buf, width = tokens.shape[0], view.buffer_size, self.dec_input.shape[-1]
        new_tokens = torch.gather(tokens, 1, prev[..., None].expand(-1, -1, tokens.shape[-1]))
        embedded = view.encode(new_tokens, prev, cond, self.enc_keys, self.enc_values)
        rows = torch.cat([torch.arange(buf, device=prev.device).expand(b, buf), prev + buf], dim=1)
        fresh = embedded + view.decoder_positions(rows)
        self.dec_input = self.dec_input.scatter(1, rows[..., None].expand(-1, -1, width),
                                                fresh.to(self.dec_input.dtype))
        forced = torch.cat([positions, prev], dim=1) + buf
        keep = s.keep_count(index, positions.shape[1], prev.shape[1], self.dec_input.shape[1])
        out, kept = cached_decoder(self.model, self.dec_input, self.dec_keys, self.dec_values, forced, keep,
                                   s.prune_layer)
        if view.delta_on_decoder:
            if with_cfg:
                out = torch.cat([out, out + self.cond_delta.to(out.dtype)])
            return view.finish(out, cond, kept)
        z = view.finish(out, cond, kept)
        return torch.cat([z, z + self.cond_delta.to(z.dtype)]) if with_cfg else z

    def diffusion(self, z, x_T, num_steps, step_noise, temperature, z_uncond, cfg_scale):
        s, head = self.sampler, self.model.diffloss
        if not s.head_cache:
            return super().diffusion(z, x_T, num_steps, step_noise, temperature, z_uncond, cfg_scale)
        net, channels, rows = head.net, head.token_dim, z.shape[0]
        total = len(respaced_timesteps(num_steps, clip_timestep=head.clip_timestep))
        c_emb = net.cond_embed(z if z_uncond is None else torch.cat([z, z_uncond]))
        cache, countdown = HeadCache(), iter(reversed(range(total)))

        def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            i = next(countdown)
            full = s.head_full(i, total)
            both = full and z_uncond is not None
            out = cached_head(net, torch.cat([x, x]) if both else x, t, c_emb if both else c_emb[:rows], cache,
                              full, s.head_recompute(i, total), s.head_delta_blocks, rows).float()
            if z_uncond is None:
                return out
            if both:
                out, uncond = out.chunk(2)
                cache.cfg_delta = out[:, :channels] - uncond[:, :channels]
                return guided(out, uncond[:, :channels], cfg_scale)
            return guided(out, out[:, :channels] - cache.cfg_delta, cfg_scale)

        return p_sample_loop(model, x_T, num_steps, step_noise, temperature, head.clip_timestep)

