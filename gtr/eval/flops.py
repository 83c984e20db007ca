"""Per-image FLOPs of a sampler run, counted on the real modules and by an analytic model.

FLOPs = 2 x MAC, CFG doubling included, VAE excluded (the paper's accounting; docs/flops.md,
Part 2). The counter runs each component once with ``torch.utils.flop_counter`` on the meta device (no weights, no
arithmetic, any model size in milliseconds) under the MATH attention backend, since the fused CPU attention kernel is
not counted (docs/flops.md Sec. 4), and composes the counts along the sampler's plan:

- per AR step: the encoder on the 64 buffer + k known tokens and the decoder on all positions, for both CFG halves;
- per predicted token and diffusion step: one evaluation of the diffusion MLP for both CFG halves, counted as the
  official code runs it (time embedding and ``cond_embed`` recomputed at every step).

The number of diffusion steps of each token comes from the sampler's own hook (FTS selects int(beta n) tokens per
step), called on random z: the count does not depend on which tokens are chosen.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from gtr.errors import GtRError
from gtr.models.diffusion import respaced_timesteps
from gtr.models.lightgen import LightGen, LightGenConfig
from gtr.models.mar import MAR, MARConfig
from gtr.models.diffusion_head import HeadCache
from gtr.sampling.cache import Cache
from gtr.sampling.lazymar import LazyMARCache
from gtr.sampling.rng import PerImageRNG
from gtr.sampling.schedule import ARStep, Schedule, check_plan


@dataclass(frozen=True)
class Flops:
    encoder: float
    decoder: float
    diffusion: float

    @property
    def total(self) -> float:
        return self.encoder + self.decoder + self.diffusion

    @property
    def tflops(self) -> float:
        return self.total / 1e12


def count_flops(fn) -> int:
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def effective_diffusion_steps(num_steps: int, clip_timestep: int | None = None) -> int:
    """Network evaluations of an n-step loop; with DiSA's ``min(t, clip)`` on the respaced timesteps, equal
    timesteps collapse (100 steps -> 96 evaluations at clip 950), the paper's effective baseline."""
    return len(respaced_timesteps(num_steps, clip_timestep=clip_timestep))


def diffusion_step_histogram(schedule: Schedule, index: int, step: ARStep, width: int) -> list[tuple[int, int]]:
    """(diffusion steps, tokens per image) of one AR step, from the sampler's own hook on random z."""
    z = torch.randn(1, step.num_tokens, width)
    token_steps = schedule.assign_diffusion_steps(index, step, z, PerImageRNG(0, [0]))
    if token_steps is None:
        return [(step.diffusion_steps, step.num_tokens)]
    return [(int(t), int(c)) for t, c in zip(*token_steps.unique(return_counts=True))]


def quadratic_through(f0: int, f1: int, f2: int):
    """The quadratic with f(0), f(1), f(2) given: matmul FLOPs are exactly quadratic in a sequence length (attention)
    or linear in a row count, so three counts determine every other length without running it."""
    first, second = f1 - f0, f2 - 2 * f1 + f0
    return lambda x: f0 + first * x + second * x * (x - 1) // 2


class FlopsCounter:
    """Counts the components of one MAR or LightGen configuration on the real modules (meta device), then any
    sampler's per-image FLOPs. Each component is counted at three sizes and extended exactly (``quadratic_through``).

    LightGen: the "encoder" part also holds the text aligner, run once per image (conditional half; the
    unconditional text is a learned constant), and the "decoder" part the cross-attention blocks after the decoder.
    """

    def __init__(self, config: MARConfig | LightGenConfig):
        self.text = isinstance(config, LightGenConfig)
        with torch.device("meta"):
            self.model = (LightGen if self.text else MAR)(config).eval()
        self.config = config
        self.width = config.width if self.text else config.encoder_embed_dim
        self.buffer = 0 if self.text else config.buffer_size

    def _meta(self, *shape: int, dtype=torch.float32) -> torch.Tensor:
        return torch.empty(*shape, dtype=dtype, device="meta")

    def _text(self, rows: int) -> torch.Tensor:
        return self._meta(rows, self.config.max_length, self.width)

    def _count_encoder(self, rows: int, known: int) -> int:
        m = self.model
        tokens = self._meta(rows, m.seq_len, m.token_dim)
        idx = self._meta(rows, known, dtype=torch.long)
        if self.text:
            return count_flops(lambda: m.forward_encoder(tokens, idx))
        return count_flops(lambda: m.forward_encoder(tokens, idx, self._meta(rows, self.width)))

    def _count_decoder(self, rows: int, known: int) -> int:
        m = self.model
        x = self._meta(rows, self.buffer + known, self.width)
        idx = self._meta(rows, known, dtype=torch.long)
        if self.text:
            return count_flops(lambda: m.forward_text(m.forward_decoder(x, idx), self._text(rows)))
        return count_flops(lambda: m.forward_decoder(x, idx))

    def _count_diffusion_step(self, rows: int) -> int:
        """One diffusion-MLP evaluation on ``rows`` tokens, as the official loop runs it."""
        net = self.model.diffloss.net
        x = self._meta(rows, self.model.token_dim)
        t = self._meta(rows, dtype=torch.long)
        return count_flops(lambda: net(x, t, self._meta(rows, self.width)))

    @functools.cached_property
    def condition(self) -> int:
        """Per image: LightGen's text aligner on the T5 features; MAR's class embedding is a lookup (0)."""
        if not self.text:
            return 0
        return count_flops(lambda: self.model.condition(self._meta(1, self.config.max_length,
                                                                   self.config.caption_channels)))

    @functools.lru_cache(maxsize=None)
    def _component(self, name: str, rows: int):
        count = getattr(self, f"_count_{name}")
        if name == "diffusion_step":
            return quadratic_through(0, count(1), count(2))
        return quadratic_through(*(count(rows, known) for known in range(3)))

    def encoder(self, rows: int, known: int) -> int:
        return self._component("encoder", rows)(known)

    def decoder(self, rows: int, known: int) -> int:
        return self._component("decoder", rows)(known)

    def diffusion_step(self, rows: int) -> int:
        return self._component("diffusion_step", 0)(rows)

    def sample(self, schedule: Schedule, clip_timestep: int | None = None, cache: Cache | None = None) -> Flops:
        """Per-image FLOPs of ``schedule`` run through ``cache`` (None: no cache)."""
        if isinstance(cache, LazyMARCache):
            return self.sample_lazymar(schedule, cache, clip_timestep)
        if cache is not None and cache.name != "none":
            raise GtRError(f"the FLOPs counter does not know cache {cache.name!r}")
        m = self.model
        plan = schedule.plan(m.seq_h, m.seq_w)
        check_plan(plan, m.seq_len, schedule.name)
        halves = 2 if schedule.guided else 1
        encoder, decoder, diffusion = self.condition, 0, 0
        known = 0
        for index, step in enumerate(plan):
            encoder += self.encoder(halves, known)
            decoder += self.decoder(halves, known)
            for num_steps, count in diffusion_step_histogram(schedule, index, step, self.width):
                evaluations = effective_diffusion_steps(num_steps, clip_timestep)
                diffusion += evaluations * self.diffusion_step(halves * count)
            known += step.num_tokens
        return Flops(float(encoder), float(decoder), float(diffusion))

    # LazyMAR: its cached steps run the very model methods the runner calls (gtr.models.cached), on meta tensors.
    def _kv(self, length: int, layers: int) -> list[torch.Tensor]:
        heads = self.config.encoder_num_heads
        return [self._meta(1, heads, length, self.width // heads) for _ in range(layers)]

    def _count_cached_encoder(self, known: int, new: int) -> int:
        m, c = self.model, self.config
        tokens = self._meta(1, new, m.token_dim)
        positions = self._meta(1, new, dtype=torch.long)
        kv = self._kv(self.buffer + known - new, c.encoder_depth)
        cond = None if self.text else self._meta(1, self.width)
        return count_flops(lambda: m.encode_cached(tokens, positions, cond, kv, list(kv)))

    def _count_cached_text(self, rows: int) -> int:
        """LightGen's cached steps: the cross-attention blocks on the ``rows`` positions the decoder kept."""
        out = self._meta(1, self.model.seq_len, self.width)
        kept = self._meta(1, rows, dtype=torch.long)
        return count_flops(lambda: self.model.cached_output(out, self._text(1), kept))

    @functools.lru_cache(maxsize=None)
    def _cached_text_in_rows(self):
        return quadratic_through(*(self._count_cached_text(j) for j in range(3)))

    def cached_text(self, rows: int) -> int:
        return self._cached_text_in_rows()(rows) if self.text else 0

    def _count_cached_decoder(self, keep: int, prune_layer: int) -> int:
        m, c = self.model, self.config
        length = self.buffer + m.seq_len
        x = self._meta(1, length, self.width)
        kv = self._kv(length, c.decoder_depth)
        forced = self._meta(1, 1, dtype=torch.long)  # which positions are forced costs nothing
        return count_flops(lambda: m.decode_pruned(x, kv, list(kv), forced, keep, prune_layer))

    @functools.lru_cache(maxsize=None)
    def _cached_encoder_fit(self):
        """FLOPs(known, new) = a + b new + c known + d new known (queries: buffer + new; keys: buffer + known),
        fitted exactly from four counts."""
        f11, f12, f22, f23 = (self._count_cached_encoder(k, n) for n, k in ((1, 1), (1, 2), (2, 2), (2, 3)))
        d = (f23 - f22) - (f12 - f11)
        c = (f12 - f11) - d
        b = f22 - f12 - 2 * d
        a = f11 - b - c - d
        return lambda known, new: a + b * new + c * known + d * new * known

    @functools.lru_cache(maxsize=None)
    def _cached_decoder_in_keep(self, prune_layer: int):
        return quadratic_through(*(self._count_cached_decoder(1 + j, prune_layer) for j in range(3)))

    def cached_encoder(self, known: int, new: int) -> int:
        """One image's cached encoder pass: the buffer and ``new`` tokens as queries, ``known`` tokens cached."""
        return self._cached_encoder_fit()(known, new)

    def cached_decoder(self, keep: int, prune_layer: int) -> int:
        """One image's cached decoder pass keeping ``keep`` positions after ``prune_layer``."""
        return self._cached_decoder_in_keep(prune_layer)(keep - 1)

    @functools.lru_cache(maxsize=None)
    def _cached_head_in_rows(self, full: bool, recompute: bool, delta_blocks: tuple[int, ...]):
        return quadratic_through(*(self._count_cached_head(1 + j, full, recompute, delta_blocks) for j in range(3)))

    def cached_head(self, rows: int, full: bool, recompute: bool, delta_blocks: tuple[int, ...]) -> int:
        return self._cached_head_in_rows(full, recompute, delta_blocks)(rows - 1)

    def _count_cached_head(self, rows: int, full: bool, recompute: bool, delta_blocks: tuple[int, ...]) -> int:
        """One diffusion-MLP evaluation of ``rows`` tokens under LazyMAR's head cache, counted as the official loop
        runs it (time embedding per row, ``cond_embed`` at every step)."""
        net, c = self.model.diffloss.net, self.config
        x = self._meta(rows, self.model.token_dim)
        t = self._meta(rows, dtype=torch.long)  # one timestep per row, as the official loop
        z = self._meta(rows, self.width)
        cache = HeadCache()
        if not full:
            cache.mlp = {j: self._meta(rows, c.diffloss_w) for j in range(c.diffloss_d)}
            cache.delta = dict(cache.mlp)
        return count_flops(lambda: net.forward_cached(x, t, net.cond_embed(z), cache, full, recompute, delta_blocks,
                                                      rows))

    def sample_lazymar(self, schedule: Schedule, cache: LazyMARCache, clip_timestep: int | None = None) -> Flops:
        """Any schedule under LazyMAR, following the cache's own walk of the plan (``LazyMARCache.walk``, which its
        runner follows too) and its head rules."""
        m = self.model
        plan = schedule.plan(m.seq_h, m.seq_w)
        check_plan(plan, m.seq_len, schedule.name)
        halves = 2 if schedule.guided else 1
        encoder, decoder, diffusion = self.condition, 0, 0
        known, previous = 0, 0
        for index, (step, mode) in enumerate(zip(plan, cache.walk(len(plan)))):
            if mode.full:
                encoder += self.encoder(halves, known)
                decoder += self.decoder(halves, known)
            else:
                keep = cache.keep_count(mode, step.num_tokens, previous, self.buffer + m.seq_len)
                encoder += self.cached_encoder(known, previous)
                kept = keep if cache.prune_layer < self.config.decoder_depth else m.seq_len
                decoder += self.cached_decoder(keep, cache.prune_layer) + self.cached_text(kept)
            for num_steps, count in diffusion_step_histogram(schedule, index, step, self.width):
                total = effective_diffusion_steps(num_steps, clip_timestep)
                if not cache.head_cache:
                    diffusion += total * self.diffusion_step(halves * count)
                    continue
                for i in range(total):
                    full = cache.head_full(i, total)
                    diffusion += self.cached_head(halves * count if full else count, full,
                                                  cache.head_recompute(i, total), cache.head_delta_blocks)
            known, previous = known + step.num_tokens, step.num_tokens
        return Flops(float(encoder), float(decoder), float(diffusion))


def analytic_flops(config: MARConfig, schedule: Schedule, clip_timestep: int | None = None) -> Flops:
    """The closed-form model of docs/flops.md Sec. 2.2, for the same plan (2 x MAC)."""
    d, w, c = config.encoder_embed_dim, config.diffloss_w, config.token_dim
    n = config.seq_h**2
    buf = config.buffer_size

    def blocks(depth: int, length: int) -> int:
        return depth * (12 * d * d * length + 2 * length * length * d)

    mlp_row = c * w + (256 * w + w * w) + d * w + config.diffloss_d * 5 * w * w + (2 * w * w + 2 * c * w)
    plan = schedule.plan(config.seq_h, config.seq_h)
    halves = 2 if schedule.guided else 1
    encoder = decoder = diffusion = 0
    known = 0
    for index, step in enumerate(plan):
        encoder += halves * (blocks(config.encoder_depth, buf + known) + known * c * d)
        decoder += halves * (blocks(config.decoder_depth, buf + n) + (buf + known) * d * d)
        for num_steps, count in diffusion_step_histogram(schedule, index, step, d):
            diffusion += halves * count * effective_diffusion_steps(num_steps, clip_timestep) * mlp_row
        known += step.num_tokens
    return Flops(2.0 * encoder, 2.0 * decoder, 2.0 * diffusion)
