"""Caching, the axis beside the schedule: how the executor evaluates the model across AR steps.

A schedule decides *what* is sampled at each AR step (token counts, order, diffusion steps, CFG); a cache decides
*how much of the model is recomputed* to get it. The executor asks the cache for a runner for each sampling run
(:meth:`Cache.runner`) and calls it for every transformer pass and diffusion loop, so any cache composes with any
schedule: ``sampler=gtr_16 cache=lazymar``. ``cache=none`` (this class) recomputes everything.
"""
from __future__ import annotations

from typing import Sequence

import torch

from gtr.sampling.runner import ModelRunner
from gtr.sampling.schedule import ARStep


class Cache:
    """No reuse: every AR step runs the model in full (``cache=none``, the default)."""

    name = "none"

    def runner(self, model: torch.nn.Module, plan: Sequence[ARStep], mode: str = "eager") -> ModelRunner:
        """The model evaluator for one sampling run of ``plan`` (fresh per run: it may hold caches across steps),
        with eager or compiled passes (``mode``, :mod:`gtr.sampling.compiled`)."""
        return ModelRunner(model, mode)


NO_CACHE = Cache()
