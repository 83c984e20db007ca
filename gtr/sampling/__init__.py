"""Samplers (schedules) and caches, their registries, and the executor that runs any schedule with any cache."""
from __future__ import annotations

import collections.abc
import dataclasses
import math
import types
import typing

from gtr.errors import GtRError
from gtr.sampling.api import sample
from gtr.sampling.baselines import DiSASampler, HaltonSampler
from gtr.sampling.cache import NO_CACHE, Cache
from gtr.sampling.executor import run_schedule
from gtr.sampling.gtr import GtRSampler
from gtr.sampling.lazymar import LazyMARCache
from gtr.sampling.mar import MARSampler
from gtr.sampling.schedule import ARStep, Schedule

SAMPLERS: dict[str, type[Schedule]] = {"mar": MARSampler, "gtr": GtRSampler, "halton": HaltonSampler,
                                       "disa": DiSASampler}
CACHES: dict[str, type[Cache]] = {"none": Cache, "lazymar": LazyMARCache}


def _fits(value, annotation) -> bool:
    """Whether an option's value has its field's declared type (int, float, bool, str, lists/sequences of them,
    ``X | None``); ints pass for floats, bools never pass for numbers."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if annotation is type(None):
        return value is None
    if origin in (list, tuple, collections.abc.Sequence):
        if isinstance(value, (str, bytes)) or not isinstance(value, collections.abc.Sequence):
            return False
        return not args or all(_fits(v, args[0]) for v in value)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return True  # tensors and other objects: the class checks them


def _finite(value) -> bool:
    """Whether every float in an option's value (a number or a sequence of them) is finite (no NaN, no inf)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, collections.abc.Sequence) and not isinstance(value, (str, bytes)):
        return all(_finite(v) for v in value)
    return True


def _build(kind: str, registry: dict, name: str, options: dict):
    if name not in registry:
        hint = " (LazyMAR is a cache: build_cache('lazymar') with any sampler)" if name == "lazymar" else ""
        raise GtRError(f"unknown {kind} {name!r}: choose one of {', '.join(registry)}{hint}")
    cls = registry[name]
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    unknown = sorted(set(options) - fields)
    if unknown:
        valid = f"valid ones are {', '.join(sorted(fields))}" if fields else "it takes none"
        raise GtRError(f"{kind} {name!r} has no option(s) {', '.join(unknown)}: {valid}")
    hints = typing.get_type_hints(cls) if fields else {}
    for key, value in options.items():
        if not _fits(value, hints[key]):
            wanted = hints[key].__name__ if isinstance(hints[key], type) else str(hints[key]).replace("typing.", "")
            raise GtRError(f"{kind} {name!r}: {key}={value!r} is not a valid {wanted}")
        if not _finite(value):
            raise GtRError(f"{kind} {name!r}: {key}={value!r} is not a finite number; give a finite value")
    return cls(**options)


def build_sampler(name: str, clip_timestep: int | None = None, **options) -> Schedule:
    """A sampler by registry name with its hyperparameters (and the diffusion respacing's ``clip_timestep``);
    unknown names or options are one-line errors."""
    if clip_timestep is not None and (isinstance(clip_timestep, bool) or not isinstance(clip_timestep, int)
                                      or not 0 <= clip_timestep < 1000):
        raise GtRError(f"clip_timestep must be null or an integer timestep in [0, 1000), got {clip_timestep!r}")
    sampler = _build("sampler", SAMPLERS, name, options)
    sampler.clip_timestep = clip_timestep
    return sampler


def build_cache(name: str = "none", **options) -> Cache:
    """A cache by registry name (``none``, ``lazymar``) with its options, for any sampler."""
    return _build("cache", CACHES, name, options)


__all__ = ["ARStep", "CACHES", "Cache", "NO_CACHE", "Schedule", "SAMPLERS", "build_cache", "build_sampler",
           "run_schedule", "sample", "GtRSampler", "MARSampler", "HaltonSampler", "DiSASampler", "LazyMARCache"]
