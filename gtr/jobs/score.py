"""Scoring images made anywhere, with no generator loaded (``gtr-score``): FID/IS (or the testbeds' analogues) of an
image folder or an ADM-layout ``.npz`` through :func:`gtr.eval.metrics.score`, and reference statistics of any
folder, written once. Images are streamed (:mod:`gtr.eval.sources`).

    python scripts/score.py samples/mar_b_gtr_16_seed0/images --reference adm_in256
    python scripts/score.py samples.npz --reference my_stats.npz
    python scripts/score.py my_reference_images/ --save-stats my_stats.npz     # statistics only
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from gtr.config.schema import check_count
from gtr.errors import GtRError, one_line_errors
from gtr.eval.fid import extract, save_statistics, statistics
from gtr.eval.metrics import Scoring
from gtr.eval.sources import image_source
from gtr.jobs.common import resolve_device
from gtr.files import write_json


def score_images(path: Path, scoring: Scoring, device: torch.device, labels: np.ndarray | None = None,
                 batch_size: int = 200) -> dict:
    """FID/IS (or analogues, and accuracy with ``labels``) of a folder or ``.npz`` against ``scoring.reference``."""
    scoring.check_extractor()
    scoring.check_reference()
    count, batches = image_source(path, batch_size)
    if labels is not None and len(labels) != count:
        raise GtRError(f"got {len(labels)} labels for {count} images")
    return {"images": str(path), "num_images": count,
            **scoring.score(batches, device, labels=labels, num_images=count)}


def folder_statistics(path: Path, out: Path, scoring: Scoring, device: torch.device, batch_size: int = 200) -> Path:
    """Write the FID statistics (mu, sigma) of a folder or ``.npz`` under ``scoring.extractor`` to ``out``."""
    count, batches = image_source(path, batch_size)
    if count < 2:
        raise GtRError(f"{path} holds {count} image: statistics need at least 2")
    extractor = scoring.make_extractor(device)
    features, _ = extract(extractor, batches, count, progress=scoring.progress)
    return save_statistics(statistics(features), out)


def main(argv: list[str] | None = None) -> None:
    """``gtr-score`` / ``scripts/score.py``: FID/IS of a folder or ADM ``.npz``, or its statistics (``--save-stats``)."""
    parser = argparse.ArgumentParser(prog="gtr-score", description=main.__doc__.split(":", 1)[1].strip())
    parser.add_argument("images", type=Path, help="a folder of .png/.jpg images or an .npz with arr_0 [N, H, W, 3]")
    parser.add_argument("--reference", help="adm_in256 (official ImageNet-256 statistics), an .npz of mu/sigma, a "
                                            "folder of reference images, fashion_mnist:<split> "
                                            "(fashion_mnist32:<split>: resized to 32 px) or scenes:<split>")
    parser.add_argument("--extractor", default="inception", choices=["inception", "fmnist", "scenes"],
                        help="inception: FID/IS (torch-fidelity's Inception-v3); fmnist / scenes: the analogues of "
                             "the Fashion-MNIST / scenes testbeds")
    parser.add_argument("--labels", type=Path, help=".npy of class labels, one per image (fmnist, scenes: class "
                                                    "accuracy; scenes: exact validity)")
    parser.add_argument("--save-stats", type=Path, help="write the images' FID statistics here instead of scoring")
    parser.add_argument("--out", type=Path, help="also write the scores as JSON here")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--weights-root", default="pretrained_models")
    parser.add_argument("--no-download", action="store_true", help="never download (Inception, named references)")
    parser.add_argument("--data-root", help="Fashion-MNIST folder (for fashion_mnist references)")
    args = parser.parse_args(argv)
    with one_line_errors():
        check_count("--batch-size", args.batch_size)
        if args.save_stats is None and args.reference is None:
            raise GtRError("say what to compare with: --reference adm_in256 | <stats.npz> | <folder> | "
                           "fashion_mnist:test (or --save-stats <out.npz> to write statistics)")
        device = resolve_device(args.device)
        scoring = Scoring(args.extractor, args.reference, data_root=args.data_root, weights_root=args.weights_root,
                          download=not args.no_download, progress=True)
        if args.save_stats is not None:
            print(f"wrote {folder_statistics(args.images, args.save_stats, scoring, device, args.batch_size)}")
            return
        labels = None
        if args.labels is not None:
            try:
                labels = np.load(args.labels, allow_pickle=False).reshape(-1)
                if labels.dtype.kind not in "iu":
                    raise ValueError(f"dtype {labels.dtype}")
            except (OSError, ValueError) as err:
                raise GtRError(f"cannot read labels {args.labels} ({err}): give an .npy of integers") from err
        result = score_images(args.images, scoring, device, labels, args.batch_size)
        if args.out is not None:
            write_json(args.out, result, indent=2)
    print(json.dumps(result, indent=2))
