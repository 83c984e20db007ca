"""Wall-clock timing of several methods side by side, in one process."""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch


def time_interleaved(methods: dict[str, Callable[[], object]], repeats: int, device: torch.device,
                     warmup: dict[str, float] | None = None) -> tuple[dict[str, list[float]], dict[str, object]]:
    """Per-method times (s) and last outputs. One warm-up call each (its time goes into ``warmup`` when given: the
    startup of a compiled method), then ``repeats`` rounds that run every method once, so drift in machine speed
    affects all methods alike; CUDA is synchronised around each call."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    outputs = {}
    for name, fn in methods.items():
        sync()
        start = time.perf_counter()
        outputs[name] = fn()
        sync()
        if warmup is not None:
            warmup[name] = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            sync()
            start = time.perf_counter()
            outputs[name] = fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return times, outputs


def summary(times: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def break_even(extra_s: float, saved_s_per_image: float) -> float | None:
    """Images after which a one-off cost (a compilation) is repaid by the time saved per image; None if nothing is
    saved."""
    return max(extra_s, 0.0) / saved_s_per_image if saved_s_per_image > 0 else None


def add_break_even(rows: list[dict]) -> None:
    """For each non-eager row, ``s_per_image_50k``: its seconds per image with one process's compilation (the startup
    of the first row in that mode: later samplers reuse its graphs, a process running one sampler pays it alone)
    spread over a 50,000-image run; and where an eager row of the same sampler exists, ``break_even_images``: the
    images after which that compilation is repaid by the time saved per image (None when it saves nothing)."""
    eager = {r["sampler"]: r["s_per_image"] for r in rows if r["mode"] == "eager"}
    first_startup: dict[str, float] = {}
    for r in rows:
        if r["mode"] == "eager":
            continue
        startup = first_startup.setdefault(r["mode"], max(r["startup_s"], 0.0))
        r["s_per_image_50k"] = r["s_per_image"] + startup / 50_000
        if r["sampler"] in eager:
            r["break_even_images"] = break_even(startup, eager[r["sampler"]] - r["s_per_image"])


def break_even_cell(row: dict) -> str:
    """A row's ``break_even_images`` as a table shows it: "never" where nothing is saved, "—" where there is nothing
    to compare with (no such key: an eager row, or no eager row to compare with)."""
    if "break_even_images" not in row:
        return "—"
    return "never" if row["break_even_images"] is None else f"{row['break_even_images']:,.0f}"


def device_tag(device: torch.device) -> str:
    """The device as a result file names it: ``cpu`` or the GPU's name (``nvidia_h100_80gb_hbm3``)."""
    return "cpu" if device.type == "cpu" else torch.cuda.get_device_name(device).replace(" ", "_").lower()


def command_line(script: str, repo: Path) -> str:
    """How this process was started, as a result file records it: ``python <script, relative to repo> <args>``."""
    return " ".join(["python", Path(script).resolve().relative_to(repo).as_posix(), *sys.argv[1:]])


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        model = "CPU"
    return f"{model}, {torch.get_num_threads()} threads"
