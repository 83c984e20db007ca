"""Validate the text-to-image scenes testbed's GenEval scoring (GenEval's rules on the exact scenes detector) and
measure its ceiling, through the code path of ``scripts/geneval.py`` (the official folder layout, ``score_folder``,
``summarize``).

    python scripts/scenes_t2i_scorer.py                    # results/scenes_t2i_scorer.{json,md}

1. Ground truth: a rendering of every evaluation prompt (553 x 4 images, each drawn from the prompt alone by
   :func:`gtr.data.scene_prompts.ground_truth`) must score >= 0.99 overall (the issue's bar).
2. Ceiling: the same images through each tokenizer (posterior sample, decode, clip, round to uint8, as generated
   samples are): what no sampler can beat, per task. ``scenes_t2i_vae`` is the one ``lightgen_scenes`` uses;
   ``scenes_vae`` (the class-conditional testbed's) is shown for why it was fine-tuned.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from gtr.errors import GtRError, one_line_errors
from gtr.files import write_json, write_text


def score_images(images: np.ndarray, records: list[dict], n: int, folder: Path) -> dict:
    """GenEval's summary of ``images`` (image k shows prompt k // n) written and scored as scripts/geneval.py
    does."""
    from gtr.eval.geneval.prompts import image_path, write_metadata
    from gtr.eval.geneval.rules import Thresholds
    from gtr.eval.geneval.scenes import SceneColors, SceneDetector
    from gtr.eval.geneval.score import score_folder
    from gtr.eval.geneval.summary import summarize
    from gtr.images import save_png
    for index, record in enumerate(records):
        write_metadata(folder, index, record)
    for k, image in enumerate(images):
        save_png(torch.from_numpy(image), image_path(folder, k // n, k % n))
    rows = score_folder(folder, SceneDetector(), SceneColors(), Thresholds(), progress=False, images_per_prompt=n)
    return summarize(rows)


def _line(name: str, summary: dict) -> str:
    from gtr.eval.geneval.summary import TABLE2_COLUMNS
    cells = " | ".join(f"{summary['tasks'][t]['score']:.3f}" for t in TABLE2_COLUMNS)
    return f"| {name} | {summary['images']:,} | {cells} | **{summary['overall']:.3f}** |"


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizers", nargs="+", default=["scenes_t2i_vae", "scenes_vae"],
                        help="shipped tokenizer names or .safetensors files of their architecture")
    parser.add_argument("--n-samples", type=int, default=4, help="images per prompt (default 4, GenEval's)")
    parser.add_argument("--out", type=Path, default=Path("results/scenes_t2i_scorer"), help="output stem")
    args = parser.parse_args()
    with one_line_errors(args.out.parent):
        if args.n_samples < 1:
            raise GtRError("--n-samples must be at least 1")
        from gtr.data.scene_prompts import evaluation_metadata, ground_truth
        from gtr.eval.geneval.summary import TABLE2_COLUMNS
        from gtr.tokenizers import TOKENIZERS, load_tokenizer, to_uint8
        records, n = evaluation_metadata(), args.n_samples
        images = np.stack([ground_truth(r["prompt"], n * i + k) for i, r in enumerate(records) for k in range(n)])
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
        ceilings = {}
        with tempfile.TemporaryDirectory() as folder:
            truth = score_images(images, records, n, Path(folder) / "truth")
            for k, name in enumerate(args.tokenizers):
                tokenizer = load_tokenizer(name, None, download=False) if name in TOKENIZERS else \
                    load_tokenizer("scenes_vae", name, download=False)
                generator = torch.Generator().manual_seed(0)
                decoded = torch.cat([tokenizer.decode(tokenizer.encode(b, generator)).clamp(-1, 1)
                                     for b in x.split(250)])
                ceilings[name] = score_images(to_uint8(decoded).numpy(), records, n, Path(folder) / f"recon{k}")
        record = {"command": "python " + " ".join(sys.argv), "evaluator": "GenEval rules, exact scenes detector",
                  "n_samples": n, "ground_truth": truth, "reconstructions": ceilings}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out.with_suffix(".json"), record)
        lines = [
            "# The text-to-image scenes scorer: validation and ceiling", "",
            f"Measured here (CPU) by `{record['command']}`: GenEval's rules and summary (overall = the unweighted "
            f"mean of the six tasks) on the exact scenes detector, over the testbed's {len(records)} evaluation "
            f"prompts x {n} images, through `score_folder` as `scripts/geneval.py` scores.", "",
            "| images | count | " + " | ".join(TABLE2_COLUMNS) + " | overall |", "|---" * (len(TABLE2_COLUMNS) + 3) + "|",
            _line("ground-truth renderings", truth),
            *(_line(f"{name} reconstructions (the ceiling)", c) for name, c in ceilings.items()), ""]
        write_text(args.out.with_suffix(".md"), "\n".join(lines))
        print("\n".join(lines[4:]))


if __name__ == "__main__":
    main()
