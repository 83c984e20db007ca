"""The baseline MAR sampler (official ``MAR.sample_tokens``): cosine mask schedule, a random order per image
consumed from its tail, linear or constant CFG, one temperature and a fixed number of diffusion steps."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gtr.errors import GtRError
from gtr.sampling.rng import RandomSource
from gtr.sampling.schedule import ARStep, Schedule

CFG_SCHEDULES = ("linear", "constant")


def cosine_mask_schedule(num_tokens: int, num_iter: int) -> list[int]:
    """Tokens still masked after each AR step, ``m_s = max(1, min(r_s - 1, floor(N cos(pi/2 (s+1)/T))))`` with
    the clamp of the official code (so T = N predicts exactly one token per step; the last m_s is 1)."""
    remaining, masked_after = num_tokens, []
    for s in range(num_iter):
        m = int(np.floor(num_tokens * np.cos(math.pi / 2.0 * (s + 1) / num_iter)))
        m = max(1, min(remaining - 1, m))
        masked_after.append(m)
        remaining = m
    return masked_after


def cosine_counts(num_tokens: int, num_iter: int) -> tuple[list[int], list[int]]:
    """Tokens predicted at each AR step and tokens still masked after it (the last step takes what is left; its
    masked count stays the clamp's 1, which the official CFG ramp uses)."""
    masked = cosine_mask_schedule(num_tokens, num_iter)
    counts = [before - after for before, after in zip([num_tokens, *masked[:-1]], masked)]
    counts[-1] = num_tokens - sum(counts[:-1])
    return counts, masked


def check_cfg_schedule(schedule: str) -> None:
    if schedule not in CFG_SCHEDULES:
        raise GtRError(f"unknown cfg_schedule {schedule!r}: choose 'linear' or 'constant'")


def check_guidance(sampler: str, cfg: float, temperature: float) -> None:
    """A guidance scale >= 0 (1: no guidance; 0: the unconditional branch alone) and a positive temperature."""
    if cfg < 0:
        raise GtRError(f"sampler {sampler!r}: cfg={cfg} is negative; use a guidance scale >= 0 (1.0 turns CFG off)")
    if temperature <= 0:
        raise GtRError(f"sampler {sampler!r}: temperature must be > 0, got {temperature}")


def cfg_scale(cfg: float, schedule: str, masked_after: int, num_tokens: int) -> float:
    """Guidance at one AR step. ``linear`` ramps with the fraction of tokens known after the step, computed in
    float32 as the official code does (so the full ``cfg`` is never reached; "follow Muse")."""
    if schedule == "constant":
        return float(cfg)
    m = torch.tensor(float(masked_after), dtype=torch.float32)
    return float(1 + (cfg - 1) * (num_tokens - m) / num_tokens)


@dataclass
class MARSampler(Schedule):
    num_iter: int = 64
    diffusion_steps: int = 100
    cfg: float = 1.0
    cfg_schedule: str = "linear"
    temperature: float = 1.0
    name = "mar"

    def __post_init__(self):
        check_cfg_schedule(self.cfg_schedule)
        check_guidance(self.name, self.cfg, self.temperature)
        if self.diffusion_steps < 1:
            raise GtRError(f"diffusion_steps must be >= 1, got {self.diffusion_steps}")

    def plan(self, seq_h: int, seq_w: int) -> list[ARStep]:
        n = seq_h * seq_w
        if not 1 <= self.num_iter <= n:
            raise GtRError(f"num_iter={self.num_iter} does not fit a {seq_h}x{seq_w} token grid: "
                           f"use 1 <= num_iter <= {n}")
        return self.steps(*cosine_counts(n, self.num_iter), n)

    def steps(self, counts: list[int], masked_after: list[int], num_tokens: int) -> list[ARStep]:
        """AR steps predicting ``counts`` tokens, guided by the CFG ramp at ``masked_after`` of ``num_tokens``."""
        return [ARStep(count, self.diffusion_steps, cfg_scale(self.cfg, self.cfg_schedule, m, num_tokens),
                       self.temperature) for count, m in zip(counts, masked_after)]

    def order(self, seq_h: int, seq_w: int, rng: RandomSource) -> torch.Tensor:
        return rng.permutation(seq_h * seq_w).flip(1)  # the official code predicts orders[m_s:r_s]: tail first
