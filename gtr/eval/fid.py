"""FID and IS through one code path for any feature extractor: torch-fidelity's Inception-v3 for ImageNet (the
paper's metrics), the project's Fashion-MNIST classifier for the embedded default model (their analogues).

An extractor maps uint8 images [B, H, W, 3] to (features [B, D], logits [B, K]). Statistics and metrics use
torch-fidelity's own functions (``fid_features_to_statistics``, ``fid_statistics_to_metric``,
``isc_features_to_metric``), so both extractors are scored by exactly the code that scores Inception features.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from gtr.errors import GtRError, require
from gtr.files import atomic_path

require("torch_fidelity", "eval")  # one line naming the extra when it is missing
from torch_fidelity.metric_fid import (KEY_METRIC_FID, fid_features_to_statistics,  # noqa: E402
                                       fid_statistics_to_metric)
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric  # noqa: E402


class FeatureExtractor(Protocol):
    name: str
    suffix: str  # appended to the metric names: "" for Inception, "_fmnist"/"_scenes" for the analogues

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 [B, H, W, 3] -> (features [B, D] float64-able, logits [B, K])."""


@torch.no_grad()
def extract(extractor: FeatureExtractor, batches: Iterable[torch.Tensor], total: int | None = None,
            progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and logits of every image in an iterable of uint8 batches, on the CPU in float64."""
    features, logits = [], []
    with tqdm(total=total, unit="img", desc=f"features ({extractor.name})", disable=not progress) as bar:
        for batch in batches:
            f, l = extractor(batch)
            features.append(f.double().cpu())
            logits.append(l.double().cpu())
            bar.update(len(batch))
    if not features:
        raise GtRError("no images to score")
    return torch.cat(features), torch.cat(logits)


def statistics(features: torch.Tensor) -> dict[str, np.ndarray]:
    """{"mu", "sigma"} of features [N, D] (N >= 2)."""
    if features.shape[0] < 2:
        raise GtRError(f"FID needs at least 2 images, got {features.shape[0]}")
    return fid_features_to_statistics(features.double().cpu())


def frechet_distance(stats_1: dict[str, np.ndarray], stats_2: dict[str, np.ndarray]) -> float:
    mu1, mu2 = np.asarray(stats_1["mu"], np.float64), np.asarray(stats_2["mu"], np.float64)
    s1, s2 = np.asarray(stats_1["sigma"], np.float64), np.asarray(stats_2["sigma"], np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise GtRError(f"FID statistics of different feature sizes ({mu1.shape[0]} vs {mu2.shape[0]}): use reference "
                       "statistics made with the same feature extractor")
    return fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, verbose=False)[KEY_METRIC_FID]


def inception_score(logits: torch.Tensor, splits: int = 10, seed: int = 2020) -> tuple[float, float]:
    """Mean and std over ``splits`` of exp(E KL(p(y|x) || p(y))), torch-fidelity's estimator (shuffled splits)."""
    if logits.shape[0] < splits:
        raise GtRError(f"IS with {splits} splits needs at least {splits} images, got {logits.shape[0]}")
    out = isc_features_to_metric(logits.double().cpu(), splits=splits, shuffle=True, rng_seed=seed)
    return out[KEY_METRIC_ISC_MEAN], out[KEY_METRIC_ISC_STD]


def save_statistics(stats: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Write {"mu", "sigma"} as an .npz (the ADM / torch-fidelity layout), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, mu=stats["mu"], sigma=stats["sigma"])
    return path


def load_statistics(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """{"mu", "sigma"} from an .npz reference-statistics file (never unpickles)."""
    path = Path(path)
    if not path.is_file():
        raise GtRError(f"FID reference statistics {path} not found: point metrics.reference at an .npz with mu and "
                       "sigma, or at a folder of reference images")
    try:
        with np.load(path, allow_pickle=False) as data:
            stats = {"mu": data["mu"], "sigma": data["sigma"]}
    except KeyError:
        raise GtRError(f"{path} has no 'mu' and 'sigma' arrays: it is not an FID statistics file") from None
    except (ValueError, OSError) as err:
        raise GtRError(f"{path} is not a readable .npz statistics file ({err})") from None
    if stats["mu"].ndim != 1 or stats["sigma"].shape != (stats["mu"].shape[0],) * 2:
        raise GtRError(f"{path}: mu {stats['mu'].shape} and sigma {stats['sigma'].shape} do not fit together")
    return stats
