"""The executor's modes: ``eager`` calls the model as it is; ``compile`` runs the transformer pass
(``forward_known``: one graph, the known positions found outside it) and the diffusion-head steps (network, guidance
and ancestral update as one function, :func:`gtr.models.diffusion_head.head_step`) through ``torch.compile`` with
Inductor's *freezing*: the weights become constants of the compiled code, so on a CPU every linear layer runs as a
prepacked oneDNN matrix product and the small elementwise kernels of the head's loop are fused. Four consecutive head
steps are one graph (:func:`gtr.models.diffusion_head.head_steps`), so the per-call costs (guards, wrapper) are paid
once per four steps, and on a CPU the code that calls the kernels is C++ (Inductor's ``cpp_wrapper``).
``cudagraphs`` (CUDA only) is ``compile`` with every compiled graph also captured as a CUDA graph per shape and
replayed, which removes the kernel launches of the head's loop (not yet measured: no GPU has been lent since).

Compiled once per model, with dynamic shapes, and reused for every AR step, token group and batch: GtR's and FTS's
varying token counts and diffusion-step counts do not recompile. The noise is drawn exactly as in eager mode and
passed in, so both RNG modes keep their guarantees; samples equal the eager mode's to float tolerance
(``tests/test_compiled.py``). The first call pays the compilation (reported separately by
``scripts/bench_executor.py``). Frozen weights are the weights of the first call: when a model's parameters change
afterwards (a training step, ``load_state_dict``), the next run compiles again instead of using stale constants.
"""
from __future__ import annotations

import functools
import shutil
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from gtr.errors import GtRError
from gtr.models.diffusion_head import head_steps

MODES = ("eager", "compile", "cudagraphs")
JOB_MODES = ("auto", *MODES)  # a job's ``mode``: ``auto`` is decided by the run's device and image count
RECOMPILE_LIMIT = 64  # compiled versions per function (Dynamo's default is 8)
# mode=auto compiles on these device types, in fp32, for runs of at least this many images, and runs eager elsewhere.
# Measured on a 2-core CPU, mar_fmnist with GtR: the generation job itself (scripts/bench_job_modes.py, two runs:
# results/job_modes_cpu_mar_fmnist_gtr.md and its history) breaks even near 9,000 images (fitted 9,300 and 8,900) and
# compiled runs 1.16-1.30x faster at 20,000; the sampler alone at batch 64 (results/latency_cpu_mar_fmnist*_b64_modes*)
# is 1.66-1.83x faster compiled. So a demo grid, a test or a short study runs eager and an FID run (50,000) compiles.
# CUDA is absent until scripts/bench_gpu.sh has measured compile there (its break-even column sets the number).
AUTO_COMPILE_MIN_IMAGES = {"cpu": 20_000}


@dataclass
class Passes:
    """How a runner evaluates the model: ``forward(tokens, known, cond)`` and the diffusion-head ``step`` (None:
    the head's own eager loop)."""
    forward: Callable[..., torch.Tensor]
    step: Callable[..., torch.Tensor] | None = None


def compile_problem(mode: str, device: torch.device | str) -> str | None:
    """Why ``mode`` (compile or cudagraphs) cannot run on ``device``, as the start of a one-line error; None if it
    can. Inductor builds C++ (CPU) or Triton (GPU) kernels as Python extension modules, so both need the Python
    headers, which a system Python without its -dev package lacks."""
    device = torch.device(device)
    if device.type == "cpu" and not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        return (f"mode={mode} on a CPU needs a C++ compiler (torch.compile builds C++ kernels): install g++ or "
                "clang")
    if device.type == "cuda":
        from torch.utils._triton import has_triton
        if not has_triton():
            return f"mode={mode} on a GPU needs Triton (pip install triton)"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        return (f"mode={mode} needs the Python headers (torch.compile builds its kernels as Python extensions): "
                "install them (e.g. apt-get install python3-dev)")
    return None


def check_mode(mode: str, device: torch.device | str = "cpu", modes: tuple[str, ...] = MODES) -> None:
    """One-line errors for a mode that cannot run here, before any work. A job checks against :data:`JOB_MODES`:
    ``auto`` too, which it decides once it knows its image count (:func:`resolve_mode`)."""
    if mode not in modes:
        hint = " (mode=auto is a job option: it is decided by the run's image count)" if mode == "auto" else ""
        raise GtRError(f"unknown executor mode {mode!r}: choose one of {', '.join(modes)}{hint}")
    if mode in ("eager", "auto"):
        return
    device = torch.device(device)
    if mode == "cudagraphs" and device.type != "cuda":
        raise GtRError(f"mode=cudagraphs captures CUDA graphs, so it needs a CUDA GPU (this run is on {device.type}): "
                       "use mode=compile")
    problem = compile_problem(mode, device)
    if problem:
        raise GtRError(f"{problem}, or use mode=eager")


def resolve_mode(mode: str, device: torch.device | str, images: int, precision: str = "fp32") -> tuple[str, str | None]:
    """The executor mode a job of ``images`` images runs in, and for ``mode=auto`` one line saying why (None
    otherwise): ``compile`` where it is measured to win (:data:`AUTO_COMPILE_MIN_IMAGES`, fp32) and can run, else
    eager. ``images`` is the whole run's count, not a rank's share or what a resumed run has left: every process of a
    run then compiles or not alike, whatever the world size or the restarts, so its images stay identical (compile
    and eager agree only to float tolerance); the price is that each process pays its own compilation."""
    if mode != "auto":
        return mode, None
    device = torch.device(device)
    least = AUTO_COMPILE_MIN_IMAGES.get(device.type)
    if least is None:
        return "eager", (f"mode=auto: eager (mode=compile is not yet measured on {device.type}; set mode=compile to "
                         "use it)")
    if precision != "fp32":
        return "eager", (f"mode=auto: eager (mode=compile is measured in fp32 only, this run is {precision}; set "
                         "mode=compile to force it)")
    if images < least:
        return "eager", (f"mode=auto: eager ({images:,} images: compiling pays off from {least:,} on a "
                         f"{device.type}; set mode=compile to force it)")
    problem = compile_problem("compile", device)
    if problem:
        return "eager", f"mode=auto: eager ({problem})"
    return "compile", (f"mode=auto: compile ({images:,} images on a {device.type}: torch.compile, the first batch "
                       "waits for the compilation; same samples to float tolerance; mode=eager turns it off)")


def _weights_key(model: torch.nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced or modified in place (its version counter moves)."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


def _compile(fn: Callable, device: torch.device, graphs: bool = False) -> Callable:
    """``fn`` compiled with freezing and, on a CPU, Inductor's C++ wrapper (the code that calls the kernels is C++,
    not Python: a head step on the small models is ~7 % faster, measured side by side). Inductor reads these options
    from its config when a graph is compiled (here at the first call and at any recompilation), and
    ``torch.compile(options=...)`` does not reach that read, so they are patched around each call rather than set
    for the whole process. So is Dynamo's limit on compiled versions of one function: every model instance adds its
    own (its weights are constants), and past the default 8 (about three models in one process, as
    ``bench_latency.py --models mar_b mar_l mar_h`` has) Dynamo would silently run the function uncompiled.

    ``graphs`` (``mode=cudagraphs``): Inductor also captures each compiled graph as a CUDA graph per input shape and
    replays it (``triton.cudagraphs``, PyTorch's CUDA-graph trees). A replay overwrites the previous replay's
    outputs, so each call marks a new step and its output is copied out at once: no graph-owned tensor outlives the
    next replay."""
    compiled = torch.compile(fn, dynamic=True)
    options = {"freezing": True, "cpp_wrapper": device.type == "cpu", "triton.cudagraphs": graphs}

    @functools.wraps(fn)
    def run(*args):
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT), torch._inductor.config.patch(options):
            if not graphs:
                return compiled(*args)
            torch.compiler.cudagraph_mark_step_begin()
            return compiled(*args).clone()
    return run


def passes(model: torch.nn.Module, mode: str = "eager") -> Passes:
    """The model's passes in ``mode``; compiled ones are built on first use and kept with the model."""
    if mode == "eager":
        return Passes(model)
    device = next(model.parameters()).device
    check_mode(mode, device)
    modes = model.__dict__.setdefault("_gtr_compiled", {})  # a plain attribute: not a submodule, not in the state dict
    kept, key = modes.get(mode), _weights_key(model)
    if kept is not None and kept[0] != key:
        torch._dynamo.reset()  # the frozen constants are stale: drop every compiled graph that holds them
        modes.clear()
        kept = None
    if kept is None:
        graphs = mode == "cudagraphs"
        known = _compile(model.forward_known, device, graphs)

        def forward(tokens: torch.Tensor, known_mask: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
            return known(tokens, model.known_positions(known_mask), cond)

        kept = key, Passes(forward, _compile(functools.partial(head_steps, model.diffloss.net), device, graphs))
        modes[mode] = kept
    return kept[1]


__all__ = ["AUTO_COMPILE_MIN_IMAGES", "JOB_MODES", "MODES", "Passes", "check_mode", "compile_problem", "passes",
           "resolve_mode"]
