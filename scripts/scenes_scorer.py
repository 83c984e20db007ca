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


def _figure(images: np.ndarray, recon: np.ndarray, failed: list[tuple[int, tuple[str, ...]]], path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont
    scale, pad, cols = 3, 4, 12
    tile = 32 * scale
    shown = failed[:cols * 2]
    rows = 2 + (2 * ((len(shown) + cols - 1) // cols) if shown else 0)
    canvas = Image.new("RGB", (cols * (tile + pad) + pad, rows * (tile + 14 + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=10)

    def put(image, r, c, text):
        x, y = pad + c * (tile + pad), pad + r * (tile + 14 + pad)
        canvas.paste(Image.fromarray(image).resize((tile, tile), Image.NEAREST), (x, y))
        draw.text((x, y + tile + 1), text, fill="black", font=font)

    for c in range(cols):
        put(images[c], 0, c, "original")
        put(recon[c], 1, c, "reconstruction")
    for k, (i, failures) in enumerate(shown):
        r, c = 2 + 2 * (k // cols), k % cols
        put(images[i], r, c, f"#{i}")
        put(recon[i], r + 1, c, ",".join(failures))
    canvas.save(path)


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
        _figure(images, recon, failed, args.out.with_suffix(".png"))
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
