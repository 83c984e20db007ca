"""How the executor evaluates the model at each AR step: one transformer pass, then one diffusion-head loop per
group of tokens sharing a number of diffusion steps. This one calls the model as it is (``cache=none``); caches that
reuse computation across steps (LazyMAR) bring their own (:mod:`gtr.sampling.cache`). ``mode``: eager or compiled
passes (:mod:`gtr.sampling.compiled`)."""
from __future__ import annotations

from typing import Callable

import torch

from gtr.sampling.compiled import passes


class ModelRunner:
    def __init__(self, model: torch.nn.Module, mode: str = "eager"):
        self.model, self.passes = model, passes(model, mode)

    def transformer(self, index: int, tokens: torch.Tensor, known: torch.Tensor, cond: torch.Tensor,
                    positions: torch.Tensor) -> torch.Tensor:
        """z [B', N, D] of every position for the batch as given (B' = 2B, conditional half first, when guided).
        ``positions`` [B, n]: the raster positions this step predicts (the runner may skip work elsewhere)."""
        return self.passes.forward(tokens, known, cond)

    def diffusion(self, z: torch.Tensor, x_T: torch.Tensor, num_steps: int, step_noise: Callable[[int], torch.Tensor],
                  temperature: float, z_uncond: torch.Tensor | None, cfg_scale: float,
                  clip_timestep: int | None = None) -> torch.Tensor:
        """Token values [M, C] for conditions z [M, D] (see ``DiffusionHead.sample``)."""
        return self.model.diffloss.sample(z, x_T, num_steps, step_noise, temperature, z_uncond=z_uncond,
                                          cfg_scale=cfg_scale, clip_timestep=clip_timestep,
                                          step=self.passes.step)
