"""Side-by-side timing of our executor (eager and ``mode=compile``) and the official ``MAR.sample_tokens`` on the
same weights.

Needs a checkout of the official code (https://github.com/LTH14/mar) for the official column; its modules are
imported from that path at run time, never copied here. Both run in this process on the same random weights
(our state dict loads strictly into the official class, which is itself a check of key compatibility), with the
same seeds; the official-RNG output of ours is compared with the official output, and the compiled output with the
eager one. The compiled row's first call (compilation) is reported separately, with its share of a 50k-image run.

    python scripts/bench_executor.py --official-repo /path/to/mar                 # tiny model, CPU
    python scripts/bench_executor.py --official-repo /path/to/mar --model mar_b --batch 64 --num-iter 64

Writes results/bench_executor.json and results/bench_executor.md (ratios are measured in one run); --out names
another stem.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

import gtr
from gtr.errors import GtRError, one_line_errors
from gtr.eval.latency import command_line, device_name, summary, time_interleaved
from gtr.models import diffusion_head
from gtr.models.registry import PRESETS
from gtr.sampling.compiled import check_mode
from gtr.sampling.executor import PRECISIONS, autocast

REPO = Path(__file__).resolve().parent.parent
COMPILED = "ours compiled (official RNG)"
ONE_STEP = "ours compiled, one head step per call (official RNG)"


def official_model(repo: Path, preset: str, diffusion_steps: int, device: torch.device) -> nn.Module:
    """The official MAR class with the hyperparameters of ``preset``."""
    sys.path.insert(0, str(repo))
    if device.type == "cpu":  # the official sampler calls .cuda() unconditionally
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
    from models.mar import MAR as OfficialMAR  # noqa: E402  (from the official checkout)

    c = PRESETS[preset]
    return OfficialMAR(img_size=c.img_size, vae_stride=c.vae_stride, patch_size=c.patch_size,
                       encoder_embed_dim=c.encoder_embed_dim, encoder_depth=c.encoder_depth,
                       encoder_num_heads=c.encoder_num_heads, decoder_embed_dim=c.decoder_embed_dim,
                       decoder_depth=c.decoder_depth, decoder_num_heads=c.decoder_num_heads, mlp_ratio=c.mlp_ratio,
                       norm_layer=partial(nn.LayerNorm, eps=c.norm_eps), vae_embed_dim=c.vae_embed_dim,
                       class_num=c.class_num, buffer_size=c.buffer_size, diffloss_d=c.diffloss_d,
                       diffloss_w=c.diffloss_w, num_sampling_steps=str(diffusion_steps)).to(device).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official-repo", type=Path, help="checkout of LTH14/mar (omit to time ours only)")
    parser.add_argument("--model", default="mar_tiny", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--num-iter", type=int, default=16)
    parser.add_argument("--diffusion-steps", type=int, default=100)
    parser.add_argument("--cfg", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="fp32", choices=sorted(PRECISIONS),
                        help="autocast around both samplers (the official one included)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    parser.add_argument("--no-compile", action="store_true", help="skip the mode=compile row")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_executor")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    with one_line_errors():  # before any work
        needed = ("models/mar.py", "models/diffloss.py", "diffusion/__init__.py")
        if args.official_repo and not all((args.official_repo / path).is_file() for path in needed):
            raise GtRError(f"--official-repo {args.official_repo} is not a checkout of LTH14/mar (it needs "
                           f"{', '.join(needed)}): git clone https://github.com/LTH14/mar")
        if not args.no_compile:
            check_mode("compile", device)

    model = gtr.build_mar(args.model, seed=0, device=device)
    with torch.no_grad():  # random weights everywhere (the official init zeroes the head's output)
        for p in model.parameters():
            p.normal_(0, 0.05)
    labels = torch.arange(args.batch) % model.config.class_num
    sampler = gtr.build_sampler("mar", num_iter=args.num_iter, diffusion_steps=args.diffusion_steps, cfg=args.cfg)

    methods = {
        "ours (official RNG)": lambda: gtr.sample(model, sampler, labels, seed=1, rng="official",
                                                  precision=args.precision),
        "ours (per-image RNG)": lambda: gtr.sample(model, sampler, labels, seed=1, precision=args.precision),
    }
    if not args.no_compile:
        methods[COMPILED] = lambda: gtr.sample(model, sampler, labels, seed=1, rng="official", mode="compile",
                                               precision=args.precision)

        def one_step_per_call():  # the ablation of diffusion_head.UNROLL, side by side
            unroll, diffusion_head.UNROLL = diffusion_head.UNROLL, 1
            try:
                return methods[COMPILED]()
            finally:
                diffusion_head.UNROLL = unroll

        methods[ONE_STEP] = one_step_per_call
    if args.official_repo:
        official = official_model(args.official_repo, args.model, args.diffusion_steps, device)
        official.load_state_dict(model.state_dict(), strict=True)

        def run_official():
            torch.manual_seed(1)
            np.random.seed(1)
            with torch.no_grad(), autocast(device, args.precision):
                return official.sample_tokens(bsz=args.batch, num_iter=args.num_iter, cfg=args.cfg,
                                              cfg_schedule="linear", labels=labels.to(device), temperature=1.0)

        methods["official sample_tokens"] = run_official
    warmup: dict[str, float] = {}
    rows, outputs = time_interleaved(methods, args.repeats, device, warmup)

    def relative_error(name: str, reference: str) -> float:
        ref = outputs[reference]
        return ((outputs[name] - ref).abs().max() / ref.abs().max()).item()

    error = relative_error("ours (official RNG)", "official sample_tokens") if args.official_repo else None
    compiled = None
    if not args.no_compile:
        steady = statistics.median(rows[COMPILED])
        startup = warmup[COMPILED] - steady
        compiled = {"relative_max_abs_error_vs_eager": relative_error(COMPILED, "ours (official RNG)"),
                    "unroll": diffusion_head.UNROLL,
                    "speedup_vs_one_step_per_call": statistics.median(rows[ONE_STEP]) / steady,
                    "startup_s": startup, "startup_share_of_50k_run": startup / (startup + 50_000 / args.batch * steady)}

    baseline = statistics.median(rows.get("official sample_tokens", rows["ours (official RNG)"]))
    result = {
        "command": command_line(__file__, REPO),
        "device": f"{device.type}: {device_name(device)}", "threads": torch.get_num_threads(), "torch": torch.__version__,
        "model": args.model, "batch": args.batch, "num_iter": args.num_iter, "diffusion_steps": args.diffusion_steps,
        "cfg": args.cfg, "precision": args.precision, "repeats": args.repeats, "relative_max_abs_error_vs_official": error, "compiled": compiled,
        "rows": [{"method": name, **summary(t),
                  "speedup_vs_official": baseline / statistics.median(t) if error is not None else None}
                 for name, t in rows.items()],
    }
    spread = max((max(t) - min(t)) / statistics.median(t) for t in rows.values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Executor vs official `sample_tokens` (measured)", "",
        f"Command: `{result['command']}`  ",
        f"Device: {result['device']}, torch {result['torch']}; model {args.model}, "
        f"batch {args.batch}, {args.precision}, {args.num_iter} AR steps x {args.diffusion_steps} diffusion steps, linear CFG "
        f"{args.cfg}; median of {args.repeats} repeats interleaved across methods, after one warm-up each.  ",
        "Relative max-abs difference of our official-RNG output from the official output: "
        + ("not run (no --official-repo)" if error is None else f"{error:.1e}") + "  ",
        *([] if compiled is None else [
            f"Compiled (`mode=compile`) vs eager, same RNG: relative max-abs difference "
            f"{compiled['relative_max_abs_error_vs_eager']:.1e}; compilation (first call minus a steady one) "
            f"{compiled['startup_s']:.1f} s, {compiled['startup_share_of_50k_run']:.2%} of a 50k-image run at this "
            f"batch size. {compiled['unroll']} head steps per compiled call vs one: "
            f"{compiled['speedup_vs_one_step_per_call']:.2f}x.  "]), "",
        f"Largest run-to-run spread of any row, (max - min) / median: {spread:.0%}; speed differences smaller "
        "than that are not resolved by this run.", "",
        "| method | median s / batch | min | max | speed vs official |", "|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        speed = "n/a" if row["speedup_vs_official"] is None else f"{row['speedup_vs_official']:.2f}x"
        lines.append(f"| {row['method']} | {row['median_s']:.3f} | {row['min_s']:.3f} | {row['max_s']:.3f} | {speed} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
