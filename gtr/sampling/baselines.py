"""The acceleration baselines of the paper's Tables 1-2 that change only MAR's schedule: the Halton order
(Besnier et al., ICLR 2025) and DiSA's annealed diffusion steps (Zhao et al., 2025). Step reduction is
``sampler=mar`` with a smaller ``num_iter``. Facts about their public code: docs/flops.md Part 1.
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import torch

from gtr.errors import GtRError
from gtr.sampling.mar import MARSampler
from gtr.sampling.rng import RandomSource
from gtr.sampling.schedule import ARStep


def van_der_corput(index: int, base: int) -> float:
    """The index-th element (index >= 1) of the 1-D Halton sequence in ``base``: 1/2, 1/4, 3/4, 1/8, ... for 2."""
    value, denominator = 0.0, 1.0
    while index:
        index, digit = divmod(index, base)
        denominator *= base
        value += digit / denominator
    return value


@functools.lru_cache(maxsize=None)
def halton_order(seq_h: int, seq_w: int) -> tuple[int, ...]:
    """Raster positions of an h x w grid in 2-D Halton order (bases 2 for rows, 3 for columns), duplicates dropped
    keeping the first occurrence, as Halton-MaskGIT's ``build_halton_mask``. Starts 133, 74, 193, 39 on 16x16."""
    seen, order, index = set(), [], 1
    while len(order) < seq_h * seq_w:
        row, col = int(van_der_corput(index, 2) * seq_h), int(van_der_corput(index, 3) * seq_w)
        position = row * seq_w + col
        if position not in seen:
            seen.add(position)
            order.append(position)
        index += 1
    return tuple(order)


def arccos_counts(num_tokens: int, num_iter: int) -> list[int]:
    """Halton-MaskGIT's tokens per step: r_i = max(i+1, int((1 - arccos((i+1)/T) / (pi/2)) N)) revealed by step i."""
    revealed, counts = 0, []
    for i in range(num_iter):
        r = max(i + 1, int((1 - math.acos((i + 1) / num_iter) / (math.pi / 2)) * num_tokens))
        counts.append(r - revealed)
        revealed = r
    return counts


@dataclass
class HaltonSampler(MARSampler):
    """MAR with the deterministic Halton order (the same for every image). ``counts``: ``cosine`` keeps MAR's mask
    schedule (the minimal change recommended in docs/flops.md Sec. 1.2), ``arccos`` uses Halton-MaskGIT's own rule."""
    counts: str = "cosine"
    name = "halton"

    def __post_init__(self):
        super().__post_init__()
        if self.counts not in ("cosine", "arccos"):
            raise GtRError(f"unknown Halton token-count rule {self.counts!r}: choose cosine or arccos")

    def plan(self, seq_h: int, seq_w: int) -> list[ARStep]:
        if self.counts == "cosine":
            return super().plan(seq_h, seq_w)
        n = seq_h * seq_w
        counts = arccos_counts(n, self.num_iter)
        return self.steps(counts, [n - k for k in itertools.accumulate(counts)], n)

    def order(self, seq_h: int, seq_w: int, rng: RandomSource) -> torch.Tensor:
        order = torch.tensor(halton_order(seq_h, seq_w))
        return order.expand(rng.batch_size, -1).clone()


def disa_steps(num_iter: int, upper: int, lower: int, strategy: str = "linear") -> list[int]:
    """DiSA's diffusion steps at each AR step s of ``num_iter``: from ``upper`` at s = 0 down to ``lower``."""
    span = upper - lower
    out = []
    for s in range(num_iter):
        frac = 0.0 if num_iter == 1 else (num_iter - 1 - s) / (num_iter - 1)
        if strategy == "linear":
            offset = int(frac * span)
        elif strategy == "cosine":
            offset = int((math.cos(math.pi * s / max(1, num_iter - 1)) + 1) / 2 * span)
        elif strategy == "two-stage":
            offset = span if s < (num_iter - 1) / 2 else 0
        elif strategy == "constant":
            offset = span
        else:
            raise GtRError(f"unknown DiSA annealing strategy {strategy!r}: choose linear, cosine, two-stage or "
                           "constant")
        out.append(lower + offset)
    return out


@dataclass
class DiSASampler(MARSampler):
    """MAR whose per-token diffusion steps anneal across AR steps (DiSA, ``--diff_sampler DiSA``). DiSA's diffusion
    code also clips timesteps at 950: run with ``diffusion.clip_timestep=950`` for its exact evaluations."""
    upper_steps: int = 50
    lower_steps: int = 5
    strategy: str = "linear"
    name = "disa"

    def __post_init__(self):
        super().__post_init__()
        if not 1 <= self.lower_steps <= self.upper_steps:
            raise GtRError(f"DiSA needs 1 <= lower_steps <= upper_steps, got {self.lower_steps} and "
                           f"{self.upper_steps}")
        disa_steps(1, self.upper_steps, self.lower_steps, self.strategy)  # validates the strategy

    def plan(self, seq_h: int, seq_w: int) -> list[ARStep]:
        steps = super().plan(seq_h, seq_w)
        counts = disa_steps(len(steps), self.upper_steps, self.lower_steps, self.strategy)
        return [ARStep(s.num_tokens, n, s.cfg, s.temperature) for s, n in zip(steps, counts)]
