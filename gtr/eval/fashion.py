"""Domain metrics of the embedded Fashion-MNIST model: the shipped classifier's penultimate features and logits
feed the same FID / IS code as Inception (an "FID analogue" and an "IS analogue"), and its predictions give the
class accuracy of generated samples."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from gtr.data import FashionMNIST
from gtr.eval.fid import extract, frechet_distance, inception_score, statistics
from gtr.models.classifier import FashionClassifier
from gtr.weights import DEFAULT_ROOT, WEIGHTS, load_into, read_checkpoint, resolve


def load_classifier(checkpoint: str | os.PathLike | None = None, root: str | os.PathLike = DEFAULT_ROOT,
                    device: str | torch.device = "cpu") -> FashionClassifier:
    path = resolve(WEIGHTS["fmnist_classifier"], checkpoint, root, download=False)
    net = FashionClassifier()
    load_into(net, read_checkpoint(path), path, "the Fashion-MNIST classifier")
    return net.to(device).eval()


class FashionExtractor:
    """uint8 RGB (or grey) images [B, 28, 28, 3] -> (128-d features, 10 logits) of the shipped classifier."""

    name = "fmnist-classifier"

    def __init__(self, classifier: FashionClassifier | None = None):
        self.net = classifier if classifier is not None else load_classifier()
        self.device = next(self.net.parameters()).device

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = images.to(self.device)
        if x.ndim == 4:
            x = x.float().mean(dim=-1)  # RGB -> grey (the generated images are grey repeated to 3 channels)
        x = (x.float() / 127.5 - 1).unsqueeze(1)
        return self.net.features_and_logits(x)


@dataclass
class DomainScores:
    fid: float
    inception_score: float
    accuracy: float
    count: int

    def as_dict(self) -> dict[str, float]:
        return {"fid_fmnist": self.fid, "is_fmnist": self.inception_score, "accuracy": self.accuracy,
                "count": self.count}


_REFERENCE: dict[tuple[int, str], dict[str, np.ndarray]] = {}


def reference_statistics(extractor: FashionExtractor, split: str = "test", root=None) -> dict[str, np.ndarray]:
    """FID statistics of a Fashion-MNIST split under ``extractor`` (computed once per process)."""
    key = (id(extractor.net), split)
    if key not in _REFERENCE:
        data = FashionMNIST(split, root, normalize=False)
        images = data.images[..., None].expand(-1, -1, -1, 3)
        features, _ = extract(extractor, images.split(1000))
        _REFERENCE[key] = statistics(features)
    return _REFERENCE[key]


def score(images: torch.Tensor, labels: torch.Tensor, extractor: FashionExtractor,
          reference: dict[str, np.ndarray], splits: int = 10) -> DomainScores:
    """FID analogue against ``reference``, IS analogue and class accuracy of uint8 images [N, 28, 28, 3]."""
    features, logits = extract(extractor, images.split(1000))
    accuracy = (logits.argmax(1) == torch.as_tensor(labels)).double().mean().item()
    return DomainScores(frechet_distance(statistics(features), reference), inception_score(logits, splits)[0],
                        accuracy, len(images))
