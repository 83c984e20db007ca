"""GtR: Generation then Reconstruction (Sec. 3.2-3.3).

The token grid is split into K stages by Algorithm 1. Stages 1..K-1 *generate* a spatially uniform skeleton, each
in random order over M_k AR steps, with diffusion steps decreasing linearly from T_max to T_min across all their AR
steps (stage-aware diffusion scheduling). Stage K *reconstructs* the remaining checkerboard in a few AR steps with
T_rec diffusion steps, except the top-beta tokens by FTS score (Eq. 5), which get T_detail.

The ablations of Tables 3-5 are options of the same sampler: ``diffusion="constant"`` keeps the GtR order with one
fixed number of diffusion steps (GtR*), ``token_order`` swaps the stage order for random (GtR† on the baseline order),
raster or 4-quadrant subsample orders with the same step counts, and ``fts_selection`` picks which tokens get
T_detail (Table 4).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gtr.errors import GtRError
from gtr.sampling.fts import fts_scores, top_fraction_mask
from gtr.sampling.mar import cfg_scale, check_cfg_schedule, check_guidance
from gtr.sampling.rng import RandomSource
from gtr.sampling.schedule import ARStep, Schedule
from gtr.sampling.stage_partition import stage_partition


def steps_from_rates(stage_sizes: list[int], rates: list[float]) -> list[int]:
    """AR steps per stage from generation rates r_k (tokens per step): M_k = max(1, round(|S_k| / r_k)).

    With the paper's MAR rates {2.67, 10.67, 64} on stages {64, 64, 128} this gives (24, 6, 2); with LightGen's
    {16, 42.6, 85.3, 256} on {128, 128, 256, 512} it gives (8, 3, 3, 2) = 16 steps, Table 2's count.
    """
    return [max(1, round(size / rate)) for size, rate in zip(stage_sizes, rates)]


def even_split(total: int, parts: int) -> list[int]:
    """``parts`` integer counts summing to ``total`` that differ by at most one (the larger ones spread evenly)."""
    return [(m + 1) * total // parts - m * total // parts for m in range(parts)]


def linear_diffusion_steps(num_ar_steps: int, t_max: int, t_min: int) -> list[int]:
    """T_max -> T_min over the generation AR steps, with DiSA's integer rule T_min + int((G-1-g)/(G-1) (T_max-T_min))
    (the diffusion code GtR's reported FLOPs derive from, see docs/flops.md Sec. 1.3)."""
    if num_ar_steps == 1:
        return [t_max]
    return [t_min + int((num_ar_steps - 1 - g) / (num_ar_steps - 1) * (t_max - t_min)) for g in range(num_ar_steps)]


def subsample_order(h: int, w: int) -> torch.Tensor:
    """Table 5's "4-quadrant raster": the grid's four quadrants are each read in raster order, taking one token from
    every quadrant in turn (so consecutive tokens are spread over the image, adjacent within a quadrant)."""
    rows, cols = (h + 1) // 2, (w + 1) // 2
    order = []
    for r in range(rows):
        for c in range(cols):
            for qi, qj in ((0, 0), (0, cols), (rows, 0), (rows, cols)):
                i, j = qi + r, qj + c
                if i < h and j < w:
                    order.append(i * w + j)
    return torch.tensor(order)


ORDERS = ("gtr", "random", "raster", "subsample")
FTS_SELECTIONS = ("high", "low", "random", "all")


@dataclass
class GtRSampler(Schedule):
    num_stages: int = 3  # K
    rates: list[float] | None = field(default_factory=lambda: [2.67, 10.67, 64.0])  # r_k, tokens per AR step
    steps: list[int] | None = None  # M_k given directly (takes precedence over rates)
    t_max: int = 50
    t_min: int = 20
    t_rec: int = 20
    fts: bool = True
    t_detail: int = 50
    beta: float = 0.1  # fraction of each reconstruction step's tokens that FTS enhances
    fts_selection: str = "high"  # high (Eq. 5) | low | random | all (Table 4's Full-Enhanced)
    diffusion: str = "stage_aware"  # stage_aware | constant (GtR*: constant_steps on every token)
    constant_steps: int = 100
    token_order: str = "gtr"  # gtr | random | raster | subsample (Table 5; random = GtR† on the baseline order)
    cfg: float = 1.0
    cfg_schedule: str = "linear"
    temperature: float = 1.0
    name = "gtr"

    def __post_init__(self):
        self.rates = None if self.rates is None else [float(r) for r in self.rates]
        self.steps = None if self.steps is None else [int(m) for m in self.steps]
        per_stage = self.steps if self.steps is not None else self.rates
        if per_stage is None or len(per_stage) != self.num_stages:
            raise GtRError(f"sampler 'gtr': give {self.num_stages} rates or steps (one per stage, num_stages="
                           f"{self.num_stages}), got {per_stage}")
        if any(v <= 0 for v in per_stage):
            raise GtRError(f"sampler 'gtr': rates and steps must be positive, got {per_stage}")
        if min(self.t_max, self.t_min, self.t_rec, self.t_detail) < 1:
            raise GtRError("sampler 'gtr': t_max, t_min, t_rec and t_detail must be >= 1")
        if not 0.0 <= self.beta <= 1.0:
            raise GtRError(f"sampler 'gtr': beta is a fraction in [0, 1], got {self.beta}")
        check_cfg_schedule(self.cfg_schedule)
        check_guidance(self.name, self.cfg, self.temperature)
        for option, value, valid in (("token_order", self.token_order, ORDERS), ("fts_selection", self.fts_selection,
                                     FTS_SELECTIONS), ("diffusion", self.diffusion, ("stage_aware", "constant"))):
            if value not in valid:
                raise GtRError(f"sampler 'gtr': unknown {option} {value!r}: choose one of {', '.join(valid)}")
        if self.constant_steps < 1:
            raise GtRError("sampler 'gtr': constant_steps must be >= 1")

    def stage_steps(self, seq_h: int, seq_w: int) -> tuple[list[torch.Tensor], list[int]]:
        stages = stage_partition(seq_h, seq_w, self.num_stages)
        sizes = [len(s) for s in stages]
        counts = self.steps if self.steps is not None else steps_from_rates(sizes, self.rates)
        for k, (size, m) in enumerate(zip(sizes, counts)):
            if m > size:
                raise GtRError(f"sampler 'gtr': stage {k + 1} has {size} tokens on a {seq_h}x{seq_w} grid but "
                               f"{m} AR steps were asked for; use at most one step per token")
        return stages, counts

    def plan(self, seq_h: int, seq_w: int) -> list[ARStep]:
        stages, counts = self.stage_steps(seq_h, seq_w)
        n = seq_h * seq_w
        last = self.num_stages - 1
        generation = linear_diffusion_steps(sum(counts[:last]), self.t_max, self.t_min) if last else []
        plan, remaining = [], n
        for k, (stage, m) in enumerate(zip(stages, counts)):
            for tokens in even_split(len(stage), m):
                remaining -= tokens
                cfg = cfg_scale(self.cfg, self.cfg_schedule, max(1, remaining), n)  # as the baseline: m_s >= 1
                if self.diffusion == "constant":
                    plan.append(ARStep(tokens, self.constant_steps, cfg, self.temperature, stage=k))
                elif k < last:
                    plan.append(ARStep(tokens, generation[len(plan)], cfg, self.temperature, stage=k))
                else:
                    plan.append(ARStep(tokens, self.t_rec, cfg, self.temperature,
                                       max_diffusion_steps=self.t_detail if self.enhances else None, stage=k))
        return plan

    @property
    def enhances(self) -> bool:
        """Whether reconstruction steps give some tokens T_detail (FTS or one of its Table 4 alternatives)."""
        return self.fts and self.diffusion == "stage_aware" and (self.beta > 0 or self.fts_selection == "all")

    def order(self, seq_h: int, seq_w: int, rng: RandomSource) -> torch.Tensor:
        n, batch = seq_h * seq_w, rng.batch_size
        if self.token_order == "random":
            return rng.permutation(n)
        if self.token_order == "raster":
            return torch.arange(n).expand(batch, n)
        if self.token_order == "subsample":
            return subsample_order(seq_h, seq_w).expand(batch, n)
        stages, _ = self.stage_steps(seq_h, seq_w)
        return torch.cat([stage[rng.permutation(len(stage))] for stage in stages], dim=1)

    def assign_diffusion_steps(self, step_index: int, step: ARStep, z: torch.Tensor,
                               rng: RandomSource) -> torch.Tensor | None:
        if step.stage != self.num_stages - 1 or step.max_diffusion_steps is None:
            return None
        if self.fts_selection == "all":
            return torch.full(z.shape[:2], self.t_detail, device=z.device)
        scores = {"high": lambda: fts_scores(z), "low": lambda: -fts_scores(z),  # Eq. 5, highest or lowest first
                  "random": lambda: rng.uniform(z.shape[1]).to(z.device)}[self.fts_selection]()
        return torch.where(top_fraction_mask(scores, self.beta), self.t_detail, self.t_rec)
