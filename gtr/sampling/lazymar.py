"""LazyMAR (Yan et al., ICCV 2025) as a cache: computation reused across AR steps and diffusion steps, applied to
any schedule (``cache=lazymar``; ``sampler=lazymar`` is MAR's schedule with it, the paper's baseline).

Mechanics and defaults follow the released code (feihongyan1/LazyMAR; docs/flops.md Sec. 1.4):

- **Full AR steps** (``s < start_step`` or ``(s - start_step) % refresh_every == 0``, and always the first) run the
  model as it is, for both CFG halves, and fill the caches.
- **Token cache** (other AR steps, conditional half only). The encoder's queries are the buffer and the tokens
  decoded at the previous step; every other known token's keys and values come from a per-layer cache, to which the
  new ones are appended. The decoder's inputs change only at those positions. Decoder layers up to ``prune_layer``
  run on every position (all layers do in a decoder of at most ``prune_layer`` layers); after that layer's attention
  only the ``keep_count`` positions whose values changed most since the previous step go on (the positions
  predicted now and at the previous step always kept), attending to keys and values cached for the others.
- **Condition cache.** The unconditional branch is not run: its features are the conditional ones plus the
  difference stored at the last full step (where the model says: ``guidance_site``).
- **Diffusion-head cache** (in the released code, always on). In each diffusion loop, evaluation i (counted down
  from T - 1) is full if ``i == T - 1`` or ``i % head_refresh_every == 0``: both CFG halves, every block, caching
  each block's MLP output, the residual deltas of ``head_delta_blocks`` and the CFG difference of eps. Otherwise the
  conditional half alone runs: the delta blocks add their cached delta, the others recompute adaLN and reuse the
  cached MLP output (recomputed while ``i > head_recompute_above * T``), and eps_uncond = eps_cond - cached difference.

**Other schedules.** The released rules are written on AR-step indices of MAR's schedule (made for 64 steps; its
keep ratios are a 64-entry table). ``step_map="index"`` (default) applies them to the raw index of any plan, as the
released code does at any ``num_iter`` (and as the paper's 41-step "Step=16" row needs to match its FLOPs).
``step_map="fraction"`` maps a plan of S steps onto 64: step s stands for the 64-step indices
[64 s / S, 64 (s + 1) / S), is full when any of them is, and takes the keep ratio of the first.

The model provides the pieces (:mod:`gtr.models.cached`, ``SimpleMLPAdaLN.forward_cached``); this module only
decides which to call. With every step full (``start_step`` past the last AR step, ``head_refresh_every=1``) the
result equals the cache-free run bit for bit. On LightGen the same caches run as our port (its released code
supports MAR only), which the Table 2 rows label as such.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Sequence

import torch

from gtr.errors import GtRError
from gtr.models.cached import CachedPasses
from gtr.models.diffusion import p_sample_loop, respaced_timesteps
from gtr.models.diffusion_head import HeadCache, guided
from gtr.sampling.cache import Cache
from gtr.sampling.runner import ModelRunner
from gtr.sampling.schedule import ARStep

# The released code's keep ratios, indexed by the raw AR step (not rescaled to num_iter; the last holds beyond 64).
KEEP_RATIOS = (1.0,) * 20 + (0.6,) + (0.5,) * 4 + (0.4,) * 5 + (0.15,) * 5 + (0.12,) * 5 + (0.05,)  # the last holds after
REFERENCE_STEPS = 64  # the schedule length the released rules are written for
STEP_MAPS = ("index", "fraction")


@dataclass(frozen=True)
class StepMode:
    """What LazyMAR does at one AR step: run it in full (and refill the caches) or from the caches, keeping this
    fraction of the decoder positions after ``prune_layer``."""
    full: bool
    keep_ratio: float


@dataclass
class LazyMARCache(Cache):
    start_step: int = 5
    refresh_every: int = 9
    keep_ratios: Sequence[float] = KEEP_RATIOS
    prune_layer: int = 3
    keep_margin: int = 15
    head_cache: bool = True
    head_refresh_every: int = 7
    head_recompute_above: float = 0.9
    head_delta_blocks: Sequence[int] = (1, 2, 3, 4)
    step_map: str = "index"
    name = "lazymar"

    def __post_init__(self):
        self.keep_ratios, self.head_delta_blocks = tuple(self.keep_ratios), tuple(self.head_delta_blocks)
        if self.start_step < 1 or self.refresh_every < 1 or self.head_refresh_every < 1:
            raise GtRError("lazymar: start_step, refresh_every and head_refresh_every must be >= 1 (the first AR "
                           "step always fills the caches)")
        if self.prune_layer < 0:
            raise GtRError(f"lazymar: prune_layer must be >= 0, got {self.prune_layer}")
        if not self.keep_ratios or not all(0 < r <= 1 for r in self.keep_ratios):
            raise GtRError(f"lazymar: keep_ratios must be fractions in (0, 1], got {list(self.keep_ratios)}")
        if self.step_map not in STEP_MAPS:
            raise GtRError(f"lazymar: unknown step_map {self.step_map!r}: choose 'index' or 'fraction'")

    def full_step(self, index: int) -> bool:
        """The released rule, on a raw AR-step index."""
        return index < self.start_step or (index - self.start_step) % self.refresh_every == 0

    def keep_ratio(self, index: int) -> float:
        return self.keep_ratios[min(index, len(self.keep_ratios) - 1)]

    def walk(self, num_steps: int) -> list[StepMode]:
        """The mode of each AR step of a ``num_steps``-step plan: the one walk both the runner and the FLOPs
        counter follow."""
        if self.step_map == "index":
            return [StepMode(s == 0 or self.full_step(s), self.keep_ratio(s)) for s in range(num_steps)]
        modes = []
        for s in range(num_steps):
            first = s * REFERENCE_STEPS // num_steps
            last = max(first + 1, (s + 1) * REFERENCE_STEPS // num_steps)
            modes.append(StepMode(s == 0 or any(self.full_step(i) for i in range(first, last)), self.keep_ratio(first)))
        return modes

    def keep_count(self, mode: StepMode, num_predicted: int, num_previous: int, length: int) -> int:
        """Decoder positions kept after ``prune_layer`` at a cached AR step, out of ``length`` (buffer included)."""
        return min(length, max(num_predicted + num_previous + self.keep_margin, int(length * mode.keep_ratio)))

    def head_full(self, i: int, total: int) -> bool:
        return i == total - 1 or i % self.head_refresh_every == 0

    def head_recompute(self, i: int, total: int) -> bool:
        return i > self.head_recompute_above * total

    def runner(self, model: torch.nn.Module, plan: Sequence[ARStep], mode: str = "eager") -> ModelRunner:
        return LazyMARRunner(model, self, self.walk(len(plan)), mode)

    def options(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


_SAID: set = set()  # (model, prune_layer) pairs already told that nothing is pruned: said once per process


class LazyMARRunner(ModelRunner):
    """Holds LazyMAR's caches for one sampling run."""

    def __init__(self, model: torch.nn.Module, cache: LazyMARCache, modes: Sequence[StepMode], mode: str = "eager"):
        super().__init__(model, mode)
        if not isinstance(model, CachedPasses):
            raise GtRError(f"cache=lazymar needs a model that exposes its cached passes (gtr.models.cached), which "
                           f"{type(model).__name__} does not: use cache=none")
        self.cache, self.modes = cache, list(modes)
        depth = len(model.decoder_blocks)
        if cache.prune_layer >= depth and (id(model), cache.prune_layer) not in _SAID:
            _SAID.add((id(model), cache.prune_layer))
            print(f"note: cache.prune_layer={cache.prune_layer} but this decoder has {depth} layers, so LazyMAR "
                  f"prunes nothing (every position runs every layer); prune_layer 0..{depth - 1} prunes",
                  file=sys.stderr)
        self.previous: torch.Tensor | None = None  # positions predicted at the previous AR step [B, n]
        self.record = None  # the last full pass (gtr.models.cached.PassRecord), updated by the cached ones
        self.cond_delta: torch.Tensor | None = None  # unconditional - conditional, at the model's guidance site

    def transformer(self, index, tokens, known, cond, positions):
        b = positions.shape[0]
        if self.previous is None or self.modes[index].full:
            z = self._full(tokens, known, cond, b)
        else:
            z = self._cached(index, tokens[:b], cond[:b], positions, with_cfg=tokens.shape[0] > b)
        self.previous = positions
        return z

    def _full(self, tokens, known, cond, b):
        z, self.record = self.model.forward_recorded(tokens, known, cond, b)
        out = self.record.dec_output if self.model.guidance_site == "decoder" else z
        self.cond_delta = out[b:] - out[:b] if out.shape[0] > b else None
        self.record.dec_output = None  # only the difference is kept
        return z

    def _cached(self, index, tokens, cond, positions, with_cfg: bool):
        m, rec, prev = self.model, self.record, self.previous
        b, buf, width = tokens.shape[0], m.buffer_size, rec.dec_input.shape[-1]
        new_tokens = torch.gather(tokens, 1, prev[..., None].expand(-1, -1, tokens.shape[-1]))
        embedded = m.encode_cached(new_tokens, prev, cond, rec.enc_keys, rec.enc_values)
        rows = torch.cat([torch.arange(buf, device=prev.device).expand(b, buf), prev + buf], dim=1)
        fresh = embedded + m.decoder_positions(rows)
        rec.dec_input = rec.dec_input.scatter(1, rows[..., None].expand(-1, -1, width), fresh.to(rec.dec_input.dtype))
        forced = torch.cat([positions, prev], dim=1) + buf
        keep = self.cache.keep_count(self.modes[index], positions.shape[1], prev.shape[1], rec.dec_input.shape[1])
        out, kept = m.decode_pruned(rec.dec_input, rec.dec_keys, rec.dec_values, forced, keep, self.cache.prune_layer)
        if m.guidance_site == "decoder":
            if with_cfg:
                out = torch.cat([out, out + self.cond_delta.to(out.dtype)])
            return m.cached_output(out, cond, kept)
        z = m.cached_output(out, cond, kept)
        return torch.cat([z, z + self.cond_delta.to(z.dtype)]) if with_cfg else z

    def diffusion(self, z, x_T, num_steps, step_noise, temperature, z_uncond, cfg_scale, clip_timestep=None):
        c, head = self.cache, self.model.diffloss
        if not c.head_cache:
            return super().diffusion(z, x_T, num_steps, step_noise, temperature, z_uncond, cfg_scale, clip_timestep)
        net, channels, rows = head.net, head.token_dim, z.shape[0]
        total = len(respaced_timesteps(num_steps, clip_timestep=clip_timestep))
        c_emb = net.cond_embed(z if z_uncond is None else torch.cat([z, z_uncond]))
        state, countdown = HeadCache(), iter(reversed(range(total)))

        def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            i = next(countdown)
            full = c.head_full(i, total)
            both = full and z_uncond is not None
            out = net.forward_cached(torch.cat([x, x]) if both else x, t, c_emb if both else c_emb[:rows], state,
                                     full, c.head_recompute(i, total), c.head_delta_blocks, rows).float()
            if z_uncond is None:
                return out
            if both:
                out, uncond = out.chunk(2)
                state.cfg_delta = out[:, :channels] - uncond[:, :channels]
                return guided(out, uncond[:, :channels], cfg_scale)
            return guided(out, out[:, :channels] - state.cfg_delta, cfg_scale)

        return p_sample_loop(model, x_T, num_steps, step_noise, temperature, clip_timestep)


__all__ = ["KEEP_RATIOS", "LazyMARCache", "LazyMARRunner", "StepMode"]
