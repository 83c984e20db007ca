"""The sampler interface: a sampler is a *schedule*, a plan of masked-autoregressive (AR) steps.

A schedule says, for each AR step, how many tokens are predicted, how many diffusion steps they get and which CFG
scale and temperature apply, and it draws the per-image generation order. One executor
(:mod:`gtr.sampling.executor`) runs any schedule on any model, with any cache (:mod:`gtr.sampling.cache`); the plan
never sees the condition (class or text).

Data-dependent choices (FTS gives more diffusion steps to high-frequency tokens, Eq. 5) go through the one hook
:meth:`Schedule.assign_diffusion_steps`, which sees the conditioning vectors z of the tokens about to be sampled.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from gtr.errors import GtRError
from gtr.sampling.rng import RandomSource


@dataclass(frozen=True)
class ARStep:
    num_tokens: int  # tokens predicted per image at this step
    diffusion_steps: int  # default per-token diffusion steps
    cfg: float  # guidance scale; 1.0 everywhere means no guidance
    temperature: float = 1.0
    # Upper bound of any per-token assignment made by the hook; per-image noise is drawn to this length so a
    # token's noise never depends on what the hook decided for the others. None: ``diffusion_steps``.
    max_diffusion_steps: int | None = None
    stage: int = 0  # which stage of a multi-stage schedule (GtR) the step belongs to

    @property
    def noise_steps(self) -> int:
        return self.max_diffusion_steps or self.diffusion_steps


class Schedule:
    """Base class of all samplers. Subclasses are dataclasses of their hyperparameters."""

    name: str = ""
    # How diffusion steps are respaced: None is the official MAR respacing, 950 DiSA's min(t, 950) clipping (which the
    # paper's FLOPs imply). A run option beside the hyperparameters (``diffusion.clip_timestep`` in the configs, the
    # model's default), set by ``build_sampler``; the model is never changed by a run.
    clip_timestep: int | None = None

    def plan(self, seq_h: int, seq_w: int) -> list[ARStep]:
        """The AR steps for an h x w token grid; their ``num_tokens`` sum to h * w."""
        raise NotImplementedError

    def order(self, seq_h: int, seq_w: int, rng: RandomSource) -> torch.Tensor:
        """Generation order [B, h*w] per image: step s predicts the next ``plan[s].num_tokens`` positions."""
        raise NotImplementedError

    def assign_diffusion_steps(self, step_index: int, step: ARStep, z: torch.Tensor,
                               rng: RandomSource) -> torch.Tensor | None:
        """Per-token diffusion steps [B, n] for this step's tokens given their conditions z [B, n, D] (and the
        batch's random source), or None for ``step.diffusion_steps`` everywhere."""
        return None

    def initial_tokens(self, batch_size: int, num_tokens: int, dim: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Tokens [B, N, C] and known mask [B, N] to start from (the same count known in every image), or None to
        start from nothing. The plan and order then cover only the unknown positions (inpainting, Figure 3)."""
        return None

    @property
    def guided(self) -> bool:
        """Whether the model runs the doubled CFG batch (the official code decides once, from the cfg option)."""
        return getattr(self, "cfg", 1.0) != 1.0


def check_plan(plan: list[ARStep], num_tokens: int, sampler: str) -> None:
    """Reject plans that do not tile the grid, with the sampler's name in the message."""
    total = sum(s.num_tokens for s in plan)
    if total != num_tokens or any(s.num_tokens < 1 for s in plan):
        raise GtRError(f"sampler {sampler!r}: the AR steps predict {total} tokens with some steps empty or the total "
                       f"not equal to the {num_tokens} tokens of the grid; check its step counts or rates")
    for s in plan:
        if s.diffusion_steps < 1 or s.noise_steps < s.diffusion_steps:
            raise GtRError(f"sampler {sampler!r}: diffusion steps must be >= 1, got {s.diffusion_steps}")
