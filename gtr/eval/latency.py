"""Wall-clock timing of several methods side by side, in one process."""
from __future__ import annotations

import statistics
import time
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


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        model = "CPU"
    return f"{model}, {torch.get_num_threads()} threads"
