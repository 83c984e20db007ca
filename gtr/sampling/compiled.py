"""The executor's two modes: ``eager`` calls the model as it is; ``compile`` runs the transformer pass and each
diffusion-head step (network, guidance and ancestral update as one function,
:func:`gtr.models.diffusion_head.head_step`) through ``torch.compile``, which fuses the small elementwise kernels
that dominate the head's loop.

Compiled once per model, with dynamic shapes, and reused for every AR step, token group and batch: GtR's and FTS's
varying token counts and diffusion-step counts do not recompile. The noise is drawn exactly as in eager mode and
passed in, so both RNG modes keep their guarantees; samples equal the eager mode's to float tolerance
(``tests/test_compiled.py``). The first call pays the compilation (reported separately by
``scripts/bench_executor.py``).
"""
from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from typing import Callable

import torch

from gtr.errors import GtRError
from gtr.models.diffusion_head import head_step

MODES = ("eager", "compile")


@dataclass
class Passes:
    """How a runner evaluates the model: ``forward(tokens, known, cond)`` and the diffusion-head ``step`` (None:
    the head's own eager loop)."""
    forward: Callable[..., torch.Tensor]
    step: Callable[..., torch.Tensor] | None = None


def check_mode(mode: str, device: torch.device | str = "cpu") -> None:
    """One-line errors for a mode that cannot run here, before any work."""
    if mode not in MODES:
        raise GtRError(f"unknown executor mode {mode!r}: choose one of {', '.join(MODES)}")
    if mode != "compile":
        return
    device = torch.device(device)
    if device.type == "cpu" and not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        raise GtRError("mode=compile on a CPU needs a C++ compiler (torch.compile builds C++ kernels): install g++ "
                       "or clang, or use mode=eager")
    if device.type == "cuda":
        from torch.utils._triton import has_triton
        if not has_triton():
            raise GtRError("mode=compile on a GPU needs Triton (pip install triton), or use mode=eager")


def passes(model: torch.nn.Module, mode: str = "eager") -> Passes:
    """The model's passes in ``mode``; compiled ones are built on first use and kept with the model."""
    if mode == "eager":
        return Passes(model)
    check_mode(mode, next(model.parameters()).device)
    compiled = model.__dict__.get("_gtr_compiled")  # a plain attribute: not a submodule, not in the state dict
    if compiled is None:
        compiled = Passes(torch.compile(model.forward, dynamic=True),
                          torch.compile(functools.partial(head_step, model.diffloss.net), dynamic=True))
        model.__dict__["_gtr_compiled"] = compiled
    return compiled


__all__ = ["MODES", "Passes", "check_mode", "passes"]
