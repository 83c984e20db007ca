"""Samplers (schedules), their registry, and the executor that runs them."""
from __future__ import annotations

import dataclasses

from gtr.errors import GtRError
from gtr.sampling.baselines import DiSASampler, HaltonSampler
from gtr.sampling.executor import run_schedule
from gtr.sampling.gtr import GtRSampler
from gtr.sampling.lazymar import LazyMARSampler
from gtr.sampling.mar import MARSampler
from gtr.sampling.schedule import ARStep, Schedule

SAMPLERS: dict[str, type[Schedule]] = {"mar": MARSampler, "gtr": GtRSampler, "halton": HaltonSampler,
                                       "disa": DiSASampler, "lazymar": LazyMARSampler}


def build_sampler(name: str, **options) -> Schedule:
    """A sampler by registry name with its hyperparameters; unknown names or options are one-line errors."""
    if name not in SAMPLERS:
        raise GtRError(f"unknown sampler {name!r}: choose one of {', '.join(SAMPLERS)}")
    cls = SAMPLERS[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise GtRError(f"sampler {name!r} has no option(s) {', '.join(unknown)}: valid ones are "
                       f"{', '.join(sorted(fields))}")
    return cls(**options)


__all__ = ["ARStep", "Schedule", "SAMPLERS", "build_sampler", "run_schedule", "GtRSampler", "MARSampler", "HaltonSampler",
           "DiSASampler", "LazyMARSampler"]
