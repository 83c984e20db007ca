"""Wall time of the real generation job (``scripts/generate.py``) in each executor mode at a few image counts: what
``mode=auto``'s threshold (``gtr.sampling.compiled.AUTO_COMPILE_MIN_IMAGES``) is checked against. The job adds what
``bench_latency.py`` does not time: decoding, PNG writing, the last partial batch and the compilation of every shape
the run meets. Every run is a fresh process, and every compiled one starts with an empty Inductor cache (what a fresh
machine pays). Per mode, a line ``seconds = startup + images x per-image`` is fitted to the render times (rank 0's
time in the render loop: compilation, sampling, decoding; the PNG writes count only in the wall time), which gives
the break-even image count of each mode against eager.

    python scripts/bench_job_modes.py --model mar_fmnist --images 2000 20000

Writes results/job_modes_<device>_<model>_<sampler>.{json,md}; the runs' output folders go under --work-dir.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gtr.errors import GtRError, one_line_errors
from gtr.eval.latency import break_even, break_even_cell, command_line, device_name, device_tag
from gtr.files import write_json, write_text
from gtr.models.registry import REGISTRY, preset
from gtr.sampling.compiled import AUTO_COMPILE_MIN_IMAGES, MODES, check_mode

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mar_fmnist", choices=sorted(REGISTRY))
    parser.add_argument("--sampler", default="gtr", help="a configs/sampler name")
    parser.add_argument("--images", nargs="+", type=int, default=[2000, 20000], help="image counts (two or more)")
    parser.add_argument("--modes", nargs="+", default=["eager", "compile"], choices=MODES)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out-dir", type=Path, default=REPO / "results")
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "bench_job_modes")
    args = parser.parse_args()
    with one_line_errors():
        if len(set(args.images)) < 2 or min(args.images) < 1:
            raise GtRError("--images needs two or more different positive counts (a line is fitted through them)")
        if "eager" not in args.modes:
            raise GtRError("--modes needs eager: break-even counts are against it")
        for mode in args.modes:
            check_mode(mode, args.device)
        bench(args)


def run_job(args: argparse.Namespace, mode: str, images: int) -> dict:
    """One generate.py process: its render seconds (compilation, sampling, decoding), wall seconds and settings."""
    out = args.work_dir / f"{args.model}_{args.sampler}_{mode}_{images}"
    cache = args.work_dir / "inductor_cache"
    for folder in (out, cache):
        shutil.rmtree(folder, ignore_errors=True)
    per_class = math.ceil(images / preset(args.model).config.num_classes)
    command = [sys.executable, "scripts/generate.py", f"model={args.model}", f"sampler={args.sampler}",
               f"num_images={images}", f"images_per_class={per_class}", f"device={args.device}", f"mode={mode}",
               "metrics.enabled=false", "npz=false", "progress=false", f"output_dir={out}"]
    start = time.perf_counter()
    run = subprocess.run(command, cwd=REPO, env=dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(cache)),
                         capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
        raise GtRError(f"generate.py failed ({' '.join(command[1:])}): {last}")
    record = json.loads((out / "results.json").read_text())
    for folder in (out, cache):
        shutil.rmtree(folder, ignore_errors=True)
    return {"mode": mode, "images": images, "render_s": record["seconds_rank0"], "wall_s": wall,
            "batch_size": record["batch_size"], "precision": record["precision"]}


def bench(args: argparse.Namespace) -> None:
    counts = sorted(set(args.images))
    runs = []
    for images in counts:
        for mode in args.modes:
            runs.append(run := run_job(args, mode, images))
            print(f"{mode:>10} {images:>7,} images: render {run['render_s']:.1f} s, wall {run['wall_s']:.1f} s",
                  flush=True)
    fits = {}
    for mode in args.modes:
        points = [(r["images"], r["render_s"]) for r in runs if r["mode"] == mode]
        per_image, startup = np.polyfit([n for n, _ in points], [s for _, s in points], 1)
        fits[mode] = {"startup_s": float(startup), "s_per_image": float(per_image)}
    eager = fits["eager"]
    for mode, fit in fits.items():
        if mode != "eager":
            fit["break_even_images"] = break_even(fit["startup_s"] - eager["startup_s"],
                                                  eager["s_per_image"] - fit["s_per_image"])

    device = torch.device(args.device)
    command = command_line(__file__, REPO)
    threshold = AUTO_COMPILE_MIN_IMAGES.get(device.type)
    result = {"command": command, "device": device_name(device), "torch": torch.__version__, "model": args.model,
              "sampler": args.sampler, "auto_compile_min_images": threshold, "runs": runs, "fits": fits}
    stem = args.out_dir / f"job_modes_{device_tag(device)}_{args.model}_{args.sampler}"
    settings = sorted({f"batch {r['batch_size']}, {r['precision']}" for r in runs})
    lines = [f"# The generation job in each executor mode: {args.model}, {args.sampler} (measured)", "",
             f"Command: `{command}`  ", f"Device: {result['device']}, torch {torch.__version__}; `scripts/generate.py` "
             f"({'; '.join(settings)}), metrics and npz off; each run a fresh process, each compiled run with an "
             "empty Inductor cache. Render = rank 0's time in the render loop (compilation, sampling, decoding); "
             "wall = the whole process (start, imports, loading, PNG writes).", ""]
    compared = [m for m in args.modes if m != "eager"]
    header = ["images", *(f"{m} {what} s" for m in args.modes for what in ("render", "wall")),
              *(f"{m} vs eager (wall)" for m in compared)]
    lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for images in counts:
        row = {r["mode"]: r for r in runs if r["images"] == images}
        cells = [f"{images:,}", *(f"{row[m][what]:.1f}" for m in args.modes for what in ("render_s", "wall_s")),
                 *(f"{row['eager']['wall_s'] / row[m]['wall_s']:.2f}x" for m in compared)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Fitted to the render times, seconds = startup + images x per-image:", "",
              "| mode | startup s | s / image | break-even images vs eager |", "|---|---|---|---|"]
    for mode, fit in fits.items():
        lines.append(f"| {mode} | {fit['startup_s']:.1f} | {fit['s_per_image']:.4f} | {break_even_cell(fit)} |")
    lines += ["", f"`mode=auto`'s threshold on {device.type} when this ran (`AUTO_COMPILE_MIN_IMAGES`): "
              + (f"compile from {threshold:,} images." if threshold else "none (always eager).")]
    write_json(stem.with_suffix(".json"), result, indent=2)
    write_text(stem.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
