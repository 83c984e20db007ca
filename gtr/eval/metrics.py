"""Scoring a folder of generated PNGs: FID against reference statistics (an .npz with ``mu``/``sigma``, or a
folder of reference images, or a Fashion-MNIST split) and IS, through :mod:`gtr.eval.fid` with the extractor the
model's config names (``inception``: torch-fidelity's Inception-v3, the paper's metric; ``fmnist`` and ``scenes``: the
project's classifiers, whose numbers are the analogues and are always labelled so; on scenes the exact validity of
each image against its class is reported too)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from PIL import Image

from gtr.errors import GtRError
from gtr.eval.fashion import parse_reference
from gtr.eval.fid import extract, frechet_distance, inception_score, load_statistics, statistics
from gtr.eval.score import folder_images


def png_batches(paths: list[Path], batch_size: int = 200) -> Iterator[torch.Tensor]:
    for start in range(0, len(paths), batch_size):
        yield torch.from_numpy(np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths[start:start + batch_size]]))


EXTRACTORS = ("inception", "fmnist", "scenes")


def check_extractor(name: str) -> None:
    if name not in EXTRACTORS:
        raise GtRError(f"unknown feature extractor {name!r}: use metrics.extractor=inception, fmnist or scenes")


def scenes_split(reference: str) -> str | None:
    """``scenes:<split>`` (a generated split of gtr.data.scenes) -> the split; None for any other reference."""
    head, _, split = str(reference).partition(":")
    if head != "scenes":
        return None
    from gtr.data.scenes import SPLIT_SIZES
    if split not in SPLIT_SIZES:
        raise GtRError(f"unknown scenes reference {reference!r}: use scenes:{' or scenes:'.join(SPLIT_SIZES)}")
    return split


# Reference statistics known by name: resolved like weights (official layout under weights.root, downloaded when
# missing and verified).
NAMED_REFERENCES = {"adm_in256": "adm_in256_stats"}


def check_reference(reference) -> None:
    if reference is None:
        raise GtRError("no FID reference: set metrics.reference to adm_in256 (the official ImageNet-256 statistics), "
                       "an .npz of mu/sigma or a folder of reference images")


def reference_file(reference: str, cfg) -> Path:
    """The local path of a named reference (downloaded and verified when missing) or the path as given."""
    if reference in NAMED_REFERENCES:
        from gtr.weights import WEIGHTS, resolve
        return resolve(WEIGHTS[NAMED_REFERENCES[reference]], None, cfg.weights.root, cfg.weights.download)
    return Path(reference)


def make_extractor(name: str, cfg, device: torch.device):
    check_extractor(name)
    if name == "inception":
        from gtr.eval.inception import InceptionExtractor
        return InceptionExtractor(cfg.metrics.get("inception"), root=cfg.weights.root, download=cfg.weights.download,
                                  device=device)
    if name == "scenes":
        from gtr.eval.scenes import SceneExtractor
        from gtr.eval.scenes import load_classifier as scenes_classifier
        return SceneExtractor(scenes_classifier(cfg.metrics.get("classifier"), cfg.weights.root, device=device))
    from gtr.eval.fashion import FashionExtractor, load_classifier
    return FashionExtractor(load_classifier(cfg.metrics.get("classifier"), device=device))


def reference_stats(reference: str, extractor, cfg) -> dict[str, np.ndarray]:
    check_reference(reference)
    if scenes_split(reference):
        from gtr.eval.scenes import reference_features
        return statistics(reference_features(extractor, scenes_split(reference)))
    fashion = parse_reference(reference)
    if fashion:
        from gtr.eval.fashion import reference_statistics
        return reference_statistics(extractor, fashion[0], cfg.metrics.get("data_root"), size=fashion[1])
    path = reference_file(reference, cfg)
    if path.is_dir():
        files = folder_images(path, minimum=0)
        if len(files) < 2:
            raise GtRError(f"reference folder {path} holds {len(files)} images: need at least 2")
        stats = statistics(extract(extractor, png_batches(files), len(files))[0])
        return {**stats, "count": len(files)}
    return load_statistics(path)


FEATURE_DIMS = {"inception": 2048, "fmnist": 128, "scenes": 128}  # what each extractor's statistics must have


def preflight(cfg) -> None:
    """Fail before any image is generated when the scoring inputs are missing (one-line errors)."""
    reference = cfg.metrics.reference
    check_reference(reference)
    check_extractor(cfg.metrics.extractor)
    fashion = parse_reference(reference)
    if scenes_split(reference):
        from gtr.weights import WEIGHTS, resolve
        resolve(WEIGHTS["scenes_classifier"], cfg.metrics.get("classifier"), cfg.weights.root, download=False)
    elif fashion:
        from gtr.data import FashionMNIST
        FashionMNIST(fashion[0], cfg.metrics.get("data_root"))  # the split's files must be there
    elif reference_file(reference, cfg).is_dir():
        files = folder_images(reference_file(reference, cfg), minimum=0)
        if len(files) < 2:
            raise GtRError(f"reference folder {reference_file(reference, cfg)} holds {len(files)} images: need at "
                           f"least 2 (and {FEATURE_DIMS[cfg.metrics.extractor]:,} or more for a full-rank covariance)")
    else:
        stats = load_statistics(reference_file(reference, cfg))
        expected = FEATURE_DIMS[cfg.metrics.extractor]
        if stats["mu"].shape[0] != expected:
            raise GtRError(f"{reference_file(reference, cfg)} holds {stats['mu'].shape[0]}-d statistics but the "
                           f"{cfg.metrics.extractor} extractor gives {expected}-d features: give statistics of the "
                           f"same extractor (or set metrics.extractor)")
    if cfg.metrics.extractor == "inception":
        from gtr.eval.inception import INCEPTION
        from gtr.weights import resolve
        resolve(INCEPTION, cfg.metrics.get("inception"), cfg.weights.root, cfg.weights.download)


def score_folder(folder: Path, num_images: int, labels: np.ndarray, cfg, device: torch.device,
                 batch_size: int = 200) -> dict:
    """FID/IS (or their analogues) of the images ``{id:05d}.png`` of a folder, streamed."""
    batches = png_batches([folder / f"{i:05d}.png" for i in range(num_images)], batch_size)
    return score_batches(batches, num_images, cfg, device, labels)


def score_batches(batches: Iterable[torch.Tensor], num_images: int, cfg, device: torch.device,
                  labels: np.ndarray | None = None) -> dict:
    """FID/IS (or their analogues; with ``labels``, class accuracy too) of uint8 [B, H, W, 3] batches, as
    ``cfg.metrics`` says (extractor, reference)."""
    extractor = make_extractor(cfg.metrics.extractor, cfg, device)
    reference = reference_stats(cfg.metrics.reference, extractor, cfg)
    exact = []
    if cfg.metrics.extractor == "scenes" and labels is not None:  # the exact scorer reads every image as it passes
        from gtr.eval.scenes import score

        def scored(batches, done=0):
            for batch in batches:
                exact.append(score(batch.numpy(), labels[done:done + len(batch)]))
                done += len(batch)
                yield batch
        batches = scored(batches)
    features, logits = extract(extractor, batches, num_images, progress=cfg.progress)
    num_images = len(features)
    fid = frechet_distance(statistics(features), reference)
    splits = min(10, num_images)
    is_mean, is_std = inception_score(logits, splits=splits)
    analogue = "" if cfg.metrics.extractor == "inception" else f"_{cfg.metrics.extractor}"
    result = {"extractor": extractor.name, "reference": str(cfg.metrics.reference),
              f"fid{analogue}": fid, f"is{analogue}": is_mean, "is_std": is_std, "is_splits": splits}
    dims = len(reference["mu"])
    small = [f"{name} has {n:,} images, fewer than the {dims:,} feature dimensions: its covariance is singular and "
             "this FID is not comparable with one against a full set"
             for name, n in (("the reference", reference.get("count")), ("the sample", num_images))
             if n is not None and n < dims]
    if small:
        result["fid_warning"] = "; ".join(small)
        print(f"warning: {result['fid_warning']}", flush=True)
    if analogue and labels is not None:
        result["accuracy"] = float((logits.argmax(1).numpy() == labels).mean())
    if exact:
        valid = np.concatenate([e.valid for e in exact])
        result["valid"], result["validity"] = int(valid.sum()), float(valid.mean())
        for kind in exact[0].failures:
            result[f"fail_{kind}"] = float(np.concatenate([e.failures[kind] for e in exact]).mean())
    return result
