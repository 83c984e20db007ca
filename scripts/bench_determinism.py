"""The determinism contract, measured: which run settings change a generated image's bytes, and by how much.

    python scripts/bench_determinism.py                       # results/determinism_<device>.{json,md}
    python scripts/bench_determinism.py --model mar_fmnist16 --images 600 --batch-sizes 1 16 64 --modes eager compile

Every variant renders the same ``--images`` images (same seed, per-image random streams, the jobs' render path
:func:`gtr.jobs.common.render`) in one process, and is compared byte for byte with the reference (the first
batch size, eager): how many images differ, how many of their pixels, and by how many levels at most. The process
count is not a variant: each image's random stream is its own, and the fixed batches are only dealt out among ranks
(``tests/test_generate.py`` checks 1 vs 2 processes byte for byte).
"""
from __future__ import annotations

import argparse
import platform
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from gtr.errors import GtRError, one_line_errors
from gtr.files import write_json, write_text

REPO = Path(__file__).resolve().parent.parent


def render(cfg, model, tokenizer, sampler, count: int, batch_size: int, mode: str) -> np.ndarray:
    from gtr.jobs.common import render
    ids = list(range(count))
    batches = [ids[i:i + batch_size] for i in range(0, count, batch_size)]
    labels = torch.arange(count) % cfg.model.num_classes
    return torch.cat([im.cpu() for _, im in render(model, sampler, tokenizer, batches, lambda b: labels[b],
                                                           seed=cfg.seed, precision="fp32", mode=mode)]).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mar_fmnist")
    parser.add_argument("--sampler", default="gtr", help="a configs/sampler name")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 16])
    parser.add_argument("--modes", nargs="+", default=["eager", "compile"], choices=["eager", "compile"])
    parser.add_argument("--out-dir", type=Path, default=REPO / "results")
    args = parser.parse_args()
    if args.images < 1 or min(args.batch_sizes) < 1:
        parser.error("--images and --batch-sizes must be >= 1")
    with one_line_errors(args.out_dir):
        from gtr.eval.latency import device_name
        from gtr.config import compose_config
        from gtr.jobs.common import load_configured_model, load_image_tokenizer, sampler_from_config
        torch.set_grad_enabled(False)
        cfg = compose_config(f"model={args.model}", f"sampler={args.sampler}")
        if not cfg.model.num_classes:
            raise GtRError(f"{args.model} is not class-conditional: choose a MAR model (mar_fmnist, mar_scenes, ...)")
        device = torch.device("cpu")
        model = load_configured_model(cfg, device)
        tokenizer = load_image_tokenizer(cfg.model.tokenizer, cfg.weights, device)
        sampler = sampler_from_config(cfg.sampler, cfg.diffusion)
        variants = [(b, "eager") for b in args.batch_sizes] + [(args.batch_sizes[0], m) for m in args.modes
                                                               if m != "eager"]
        images = {}
        for batch_size, mode in variants:
            print(f"rendering {args.images} images at batch {batch_size}, {mode} ...", flush=True)
            images[(batch_size, mode)] = render(cfg, model, tokenizer, sampler, args.images, batch_size, mode)
        reference = images[variants[0]].astype(np.int16)
        rows = []
        for (batch_size, mode), got in images.items():
            diff = np.abs(got.astype(np.int16) - reference)
            per_image = diff.reshape(len(diff), -1).max(1)
            rows.append({"batch_size": batch_size, "mode": mode, "images_differing": int((per_image > 0).sum()),
                         "pixels_differing": int((diff > 0).any(-1).sum()), "max_levels": int(diff.max())})
        record = {"command": shlex.join(["python", "scripts/bench_determinism.py", *sys.argv[1:]]),
                  "device": device_name(device), "machine": platform.processor() or platform.machine(),
                  "torch": torch.__version__, "threads": torch.get_num_threads(), "model": args.model,
                  "sampler": args.sampler, "images": args.images, "image_size": int(reference.shape[1]),
                  "reference": {"batch_size": variants[0][0], "mode": "eager"}, "rows": rows}
        stem = args.out_dir / f"determinism_{'cpu' if device.type == 'cpu' else device_name(device)}"
        args.out_dir.mkdir(parents=True, exist_ok=True)
        write_json(stem.with_suffix(".json"), record)
        lines = [f"# Determinism: what changes a generated image's bytes ({record['device']})", "",
                 f"Measured here by `{record['command']}` (torch {record['torch']}, {record['threads']} threads): "
                 f"{args.images} images of `{args.model}` with `sampler={args.sampler}`, each variant against batch "
                 f"{variants[0][0]}, eager, in one process.", "",
                 "| batch size | mode | images differing | pixels differing | max difference (levels of 255) |",
                 "|---|---|---|---|---|"]
        lines += [f"| {r['batch_size']} | {r['mode']} | {r['images_differing']} / {args.images} | "
                  f"{r['pixels_differing']:,} | {r['max_levels']} |" for r in rows]
        lines += ["", "The process count changes no byte (each image has its own random stream; "
                  "`tests/test_generate.py`). A resumable job records batch size, mode and device type in its "
                  "`run.json` and refuses to resume under others."]
        write_text(stem.with_suffix(".md"), "\n".join(lines) + "\n")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
