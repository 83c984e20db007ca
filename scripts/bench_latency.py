"""Latency of samplers side by side in one process, beside their FLOPs speedups.

    python scripts/bench_latency.py                                   # MAR-B, batch 1, CPU: mar (64) vs gtr_16
    python scripts/bench_latency.py --models mar_b mar_l mar_h --batch 64 --precision bf16 \
        --samplers mar mar_16 halton disa gtr_16 mar_8 halton_8 disa_8 gtr_8
    python scripts/bench_latency.py --models lightgen --batch 4 --precision fp16 \
        --samplers lightgen_32 lightgen_16 lazymar_lightgen_16 gtr_lightgen lightgen_12 lazymar_lightgen_12 \
        gtr_lightgen_12                                                                     # Table 2 (GPU)
    python scripts/bench_latency.py --models mar_h --batch 256 --precision bf16 --samplers mar gtr_16 \
        --modes eager compile                                      # eager beside mode=compile (torch.compile)

Random weights (latency does not depend on them); the same labels (LightGen: the same random T5 features) and seed
for every sampler; timing includes the transformer and diffusion head (LightGen: and its text aligner), not the VAE
or T5 (LightGen's FLOPs include its text aligner). Writes results/latency_<device>_<model>_<precision>_b<batch>.{json,md}
per model (latency per image = batch time / batch, achieved TFLOP/s and, on a GPU whose peak is known, its share of
the dense bf16 peak; on CUDA the peak memory of each sampler). The first sampler in the first mode is the reference
of the speedup columns; with several ``--modes`` the file name ends in ``_modes`` and a compiled row's startup (its
first call minus a steady one; with Inductor's cache cold or warm, ``_modes_warm`` for warm) is reported, with the
number of images after which it is repaid ("break-even images": what ``mode=auto``'s threshold is set by) and the
seconds per image over a 50,000-image run with that startup spread over it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

import gtr
from gtr.errors import one_line_errors
from gtr.eval.flops import FlopsCounter
from gtr.eval.latency import (add_break_even, break_even_cell, command_line, device_name, device_tag, summary,
                              time_interleaved)
from gtr.files import write_json
from gtr.models import build_model
from gtr.models.registry import REGISTRY
from gtr.jobs.common import cache_from_config, resolve_device, sampler_from_config, sampling_options
from gtr.config import compose_config
from gtr.sampling.compiled import MODES, check_mode

REPO = Path(__file__).resolve().parent.parent
# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets, for the "share of peak" column.
BF16_PEAK_TFLOPS = {"h100 80gb hbm3": 989.0, "h100 sxm": 989.0, "h200": 989.0, "h100 pcie": 756.0, "a100": 312.0}


def bf16_peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device).lower()
    return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["mar_b"], choices=sorted(REGISTRY))
    parser.add_argument("--samplers", nargs="+", default=["mar", "gtr_16"], help="configs/sampler names")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--clip-timestep", type=int, default=None,
                        help="diffusion.clip_timestep (default: 950 for MAR, the paper's FLOPs reading; LightGen's "
                             "own config, unclipped)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--modes", nargs="+", default=["eager"], choices=MODES, help="executor modes to time")
    parser.add_argument("--out-dir", type=Path, default=REPO / "results")
    args = parser.parse_args()
    if args.batch < 1 or args.repeats < 1:
        parser.error("--batch and --repeats must be >= 1")
    with one_line_errors(args.out_dir):
        device = resolve_device(args.device)
        for mode in args.modes:
            check_mode(mode, device)
        for model_name in args.models:  # every sampler config exists before any model is timed
            for sampler in args.samplers:
                sampling_options(model_name, sampler)
        for model_name in args.models:
            bench(model_name, args, device)


def inductor_cache_state() -> str:
    """``cold`` when Inductor's on-disk cache (``$TORCHINDUCTOR_CACHE_DIR``) holds nothing yet, so the compile startup
    measured is what a fresh machine pays, else ``warm`` (a later process on the same machine)."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir
    folder = Path(cache_dir())
    return "warm" if folder.is_dir() and any(folder.iterdir()) else "cold"


def bench(model_name: str, args: argparse.Namespace, device: torch.device) -> None:
    cache = inductor_cache_state() if set(args.modes) - {"eager"} else None  # before this model compiles anything
    cfg = compose_config(f"model={model_name}")
    clip = args.clip_timestep
    model, counter = build_model(model_name, seed=0, device=device), FlopsCounter(REGISTRY[model_name].architecture)
    if cfg.model.condition == "text":
        shape = (args.batch, model.config.max_length, model.config.caption_channels)
        conditions = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)
        clip = cfg.model.clip_timestep if clip is None else clip
    else:
        conditions = torch.arange(args.batch) % model.config.class_num
        clip = 950 if clip is None else clip
    samplers, caches, flops = {}, {}, {}
    for name in args.samplers:  # a sampler config, or "<sampler>+<cache>" (gtr_16+lazymar)
        options, cache_options = sampling_options(model_name, name)
        samplers[name] = sampler_from_config(options, {"clip_timestep": clip})
        caches[name] = cache_from_config(cache_options)
        flops[name] = counter.sample(samplers[name], clip, caches[name]).total
    peak = {}

    def method(name: str, mode: str):
        def run():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            out = gtr.sample(model, samplers[name], conditions, seed=0, precision=args.precision,
                             cache=caches[name], mode=mode)
            if device.type == "cuda":
                peak[(name, mode)] = torch.cuda.max_memory_allocated(device) / 2**30
            return out
        return run

    runs = [(name, mode) for mode in args.modes for name in args.samplers]
    label = {run: run[0] if len(args.modes) == 1 else f"{run[0]} [{run[1]}]" for run in runs}
    warmup: dict[str, float] = {}
    times, _ = time_interleaved({label[r]: method(*r) for r in runs}, args.repeats, device, warmup)

    reference, peak_tflops = label[runs[0]], bf16_peak(device)
    rows = []
    for run in runs:
        name, mode = run
        stats = summary(times[label[run]])
        measured = summary(times[reference])["median_s"] / stats["median_s"]
        flops_speedup = flops[runs[0][0]] / flops[name]
        achieved = flops[name] * args.batch / stats["median_s"] / 1e12
        rows.append({"sampler": name, "mode": mode, **stats, "s_per_image": stats["median_s"] / args.batch,
                     "tflops_per_image": flops[name] / 1e12, "speedup_measured": measured,
                     "speedup_flops": flops_speedup, "measured_over_flops": measured / flops_speedup,
                     "achieved_tflops_per_s": achieved,
                     "share_of_bf16_peak": None if peak_tflops is None else achieved / peak_tflops,
                     "startup_s": warmup[label[run]] - stats["median_s"] if mode != "eager" else None,
                     "peak_memory_gib": peak.get(run)})
    add_break_even(rows)
    tag, command = device_tag(device), command_line(__file__, REPO)
    result = {"command": command, "device": device_name(device), "torch": torch.__version__, "model": model_name,
              "batch": args.batch, "precision": args.precision, "clip_timestep": clip, "modes": args.modes,
              "bf16_peak_tflops": peak_tflops, "inductor_cache": cache,
              "repeats": args.repeats, "rows": rows}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.modes == ["eager"] else "_modes" if cache == "cold" else "_modes_warm"
    out = args.out_dir / f"latency_{tag}_{model_name}_{args.precision}_b{args.batch}{suffix}"
    memory = device.type == "cuda"
    lines = [
        f"# Latency, {model_name}, batch {args.batch}, {args.precision} (measured)", "",
        f"Command: `{command}`  ", f"Device: {result['device']}, torch {torch.__version__}; random weights; "
        f"median of {args.repeats} repeats interleaved across samplers after one warm-up each; VAE not timed."
        + ("" if cache is None else
           f" Compile startup = first call minus a steady one, Inductor cache {cache} before this model compiled "
           "(cold: what a fresh machine pays; warm: a later process on the same machine); break-even images = the "
           "process's compilation (the first compiled row's startup) over the time saved per image; s / image over "
           "50k = the same compilation spread over a 50,000-image run."), "",
        "| sampler | mode | median s / batch | min | max | s / image | TFLOPs / image | achieved TFLOP/s | "
        "share of bf16 peak | speedup measured | speedup FLOPs | measured / FLOPs | compile startup s | "
        "break-even images | s / image over 50k |" + (" peak GiB |" if memory else ""),
        "|---" * 15 + "|" + ("---|" if memory else ""),
    ]
    for r in rows:
        share = "n/a" if r["share_of_bf16_peak"] is None else f"{r['share_of_bf16_peak']:.1%}"
        startup = "—" if r["startup_s"] is None else f"{r['startup_s']:.1f}"
        even = break_even_cell(r)
        amortised = "—" if r.get("s_per_image_50k") is None else f"{r['s_per_image_50k']:.4f}"
        lines.append(f"| {r['sampler']} | {r['mode']} | {r['median_s']:.2f} | {r['min_s']:.2f} | {r['max_s']:.2f} | "
                     f"{r['s_per_image']:.4f} | {r['tflops_per_image']:.2f} | {r['achieved_tflops_per_s']:.2f} | "
                     f"{share} | {r['speedup_measured']:.2f}x | {r['speedup_flops']:.2f}x | "
                     f"{r['measured_over_flops']:.2f} | {startup} | {even} | {amortised} |"
                     + (f" {r['peak_memory_gib']:.1f} |" if memory else ""))
    write_json(out.with_suffix(".json"), result, indent=2)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
