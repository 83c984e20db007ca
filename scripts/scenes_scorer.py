"""Validate the scenes testbed's exact scorer and measure its ceiling.

    python scripts/scenes_scorer.py                        # results/scenes_scorer.{json,md,png}
    python scripts/scenes_scorer.py --tokenizer-checkpoint runs/scenes_vae/scenes_vae.safetensors

1. Ground truth: every generated test image (10,000) must parse to a valid scene of its class (>= 99 % is the
   issue's bar; the rasteriser and the parser share their shape masks, so anything below 100 % is a bug).
2. Ceiling: the first ``--recon`` test images through the scenes tokenizer (posterior sample, decode, clip, round to
   uint8, as generated samples are): the share still valid is the best any sampler can reach, and its failures show
   what the tokenizer loses. Also the reconstruction MSE / PSNR in [-1, 1].
3. ``<out>.png``: the first ground-truth images over their reconstructions, then reconstructions that fail, each
   labelled with its failure kinds.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

from gtr.errors import GtRError, one_line_errors
from gtr.files import write_json, write_text


def _rates_line(name: str, rates: dict, count: int) -> str:
    fails = ", ".join(f"{k.removeprefix('fail_')} {v:.2%}" for k, v in rates.items() if k.startswith("fail_"))
    return f"| {name} | {count:,} | {rates['validity']:.2%} | {fails} |"


def _figure(images: np.ndarray, recon: np.ndarray, valid: np.ndarray, failed: list[tuple[int, tuple[str, ...]]],
            path: Path, cols: int = 12) -> None:
    """The first ground-truth images over their reconstructions, then failed reconstructions over their originals."""
    from gtr.images import sample_sheet
    rows = [("ground truth (test split)", [(images[c], f"#{c}") for c in range(cols)]),
            ("tokenizer reconstructions", [(recon[c], "valid" if valid[c] else "invalid") for c in range(cols)])]
    for start in range(0, min(len(failed), 2 * cols), cols):
        shown = failed[start:start + cols]
        rows += [("originals of failed reconstructions", [(images[i], f"#{i}") for i, _ in shown]),
                 ("failed reconstructions", [(recon[i], ",".join(kinds)) for i, kinds in shown])]
    sample_sheet(rows, path)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer-checkpoint", default=None,
                        help="a scenes_vae safetensors file (default: the shipped one)")
    parser.add_argument("--ground-truth", type=int, default=10_000, help="test images parsed (default 10,000)")
    parser.add_argument("--recon", type=int, default=2_000, help="test images reconstructed (default 2,000)")
    parser.add_argument("--out", type=Path, default=Path("results/scenes_scorer"), help="output stem")
    args = parser.parse_args()
    with one_line_errors(args.out.parent):
        for name in ("ground_truth", "recon"):
            if getattr(args, name) < 1:
                raise GtRError(f"--{name.replace('_', '-')} must be at least 1")
        from gtr.data.scenes import SPLIT_SEEDS, generate
        from gtr.eval import scenes as E
        from gtr.tokenizers import load_tokenizer, to_uint8
        tokenizer = load_tokenizer("scenes_vae", args.tokenizer_checkpoint, download=False)
        images, labels = generate(max(args.ground_truth, args.recon), SPLIT_SEEDS["test"])
        truth = E.score(images[:args.ground_truth], labels[:args.ground_truth])

        x = torch.from_numpy(images[:args.recon]).permute(0, 3, 1, 2).float() / 127.5 - 1
        generator = torch.Generator().manual_seed(0)
        decoded = torch.cat([tokenizer.decode(tokenizer.encode(b, generator)).clamp(-1, 1) for b in x.split(250)])
        mse = ((decoded - x) ** 2).mean().item()
        recon = to_uint8(decoded).numpy()
        ceiling = E.score(recon, labels[:args.recon])
        failed = [(int(i), tuple(k for k in E.FAILURES if ceiling.failures[k][i])) for i in np.flatnonzero(~ceiling.valid)]

        record = {"command": "python " + " ".join(sys.argv), "tokenizer": str(args.tokenizer_checkpoint or "shipped"),
                  "thresholds": {k: getattr(E, k) for k in ("UNCLEAR", "MIN_AREA", "MIN_IOU", "MIN_PURITY",
                                                            "MIN_BACKGROUND")},
                  "ground_truth": {"count": truth.count, **truth.rates()},
                  "reconstructions": {"count": ceiling.count, **ceiling.rates(), "mse": mse,
                                      "psnr_db": 10 * math.log10(4 / mse)},
                  "failed_reconstructions": [i for i, _ in failed]}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out.with_suffix(".json"), record)
        _figure(images, recon, ceiling.valid, failed, args.out.with_suffix(".png"))
        t = record["thresholds"]
        lines = [
            "# The scenes scorer: validation and ceiling", "",
            f"Measured here (CPU) by `{record['command']}`. Thresholds (fixed before any sample was scored): "
            f"unclear beyond RGB distance {t['UNCLEAR']:g}, regions of {t['MIN_AREA']} px or more, template IoU "
            f">= {t['MIN_IOU']}, object purity >= {t['MIN_PURITY']}, background share >= {t['MIN_BACKGROUND']}.", "",
            "| images | count | valid | failures |", "|---|---|---|---|",
            _rates_line("generated ground truth (test split)", truth.rates(), truth.count),
            _rates_line(f"tokenizer reconstructions (the ceiling; PSNR {record['reconstructions']['psnr_db']:.1f} dB)",
                        ceiling.rates(), ceiling.count), "",
            f"![originals, reconstructions, failed reconstructions]({args.out.name}.png)", ""]
        write_text(args.out.with_suffix(".md"), "\n".join(lines))
        print("\n".join(lines[4:8]))


if __name__ == "__main__":
    main()
