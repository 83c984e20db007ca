"""Latency of samplers side by side in one process, beside their FLOPs speedups.

    python scripts/bench_latency.py                                   # MAR-B, batch 1, CPU: mar (64) vs gtr_16
    python scripts/bench_latency.py --model mar_h --batch 64 --precision bf16 --samplers mar gtr_16 gtr_8

Random weights (latency does not depend on them); the same labels and seed for every sampler; timing includes the
transformer and diffusion head, not the VAE. Writes results/latency_<device>.{json,md}. The first sampler is the
reference of the speedup columns.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

import gtr
from gtr.eval.flops import FlopsCounter
from gtr.eval.latency import device_name, summary, time_interleaved
from gtr.models.mar import PRESETS
from gtr.pipeline import compose_config, sampler_from_config

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mar_b", choices=sorted(PRESETS))
    parser.add_argument("--samplers", nargs="+", default=["mar", "gtr_16"], help="configs/sampler names")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--clip-timestep", type=int, default=950, help="diffusion.clip_timestep (paper: 950)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)

    model = gtr.build_mar(args.model, seed=0, device=device)
    model.diffloss.clip_timestep = args.clip_timestep
    counter = FlopsCounter(PRESETS[args.model])
    labels = torch.arange(args.batch) % model.config.class_num
    samplers, flops = {}, {}
    for name in args.samplers:
        options = OmegaConf.to_container(compose_config(f"model={args.model}", f"sampler={name}").sampler, resolve=True)
        samplers[name] = sampler_from_config(options)
        flops[name] = counter.sample(samplers[name], args.clip_timestep).total
    methods = {name: (lambda s=s: gtr.sample(model, s, labels, seed=0, precision=args.precision))
               for name, s in samplers.items()}
    times, _ = time_interleaved(methods, args.repeats, device)

    reference = args.samplers[0]
    rows = []
    for name in args.samplers:
        stats = summary(times[name])
        measured = summary(times[reference])["median_s"] / stats["median_s"]
        flops_speedup = flops[reference] / flops[name]
        rows.append({"sampler": name, **stats, "tflops_per_image": flops[name] / 1e12,
                     "speedup_measured": measured, "speedup_flops": flops_speedup,
                     "measured_over_flops": measured / flops_speedup})
    tag = "cpu" if device.type == "cpu" else torch.cuda.get_device_name(device).replace(" ", "_").lower()
    result = {"command": " ".join(["python", Path(__file__).resolve().relative_to(REPO).as_posix(), *sys.argv[1:]]),
              "device": device_name(device), "torch": torch.__version__, "model": args.model, "batch": args.batch,
              "precision": args.precision, "clip_timestep": args.clip_timestep, "repeats": args.repeats,
              "rows": rows}
    out = REPO / "results" / f"latency_{tag}"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Latency, {args.model}, batch {args.batch}, {args.precision} (measured)", "",
        f"Command: `{result['command']}`  ", f"Device: {result['device']}, torch {torch.__version__}; random weights; "
        f"median of {args.repeats} repeats interleaved across samplers after one warm-up each; VAE not timed.", "",
        f"| sampler | median s / batch | min | max | TFLOPs / image | speedup measured | speedup FLOPs | "
        f"measured / FLOPs |", "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['sampler']} | {r['median_s']:.2f} | {r['min_s']:.2f} | {r['max_s']:.2f} | "
                     f"{r['tflops_per_image']:.2f} | {r['speedup_measured']:.2f}x | {r['speedup_flops']:.2f}x | "
                     f"{r['measured_over_flops']:.2f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
