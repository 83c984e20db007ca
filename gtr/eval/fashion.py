"""Domain metrics of the embedded Fashion-MNIST model: the shipped classifier's penultimate features and logits
feed the same FID / IS code as Inception (an "FID analogue" and an "IS analogue"), and its predictions give the
class accuracy of generated samples."""
from __future__ import annotations

import os

import numpy as np
import torch

from gtr.data import FashionMNIST, resize
from gtr.errors import GtRError
from gtr.eval.fid import extract, statistics
from gtr.models.classifier import FashionClassifier
from gtr.weights import DEFAULT_ROOT, WEIGHTS, load_into, read_checkpoint, resolve


def load_classifier(checkpoint: str | os.PathLike | None = None, root: str | os.PathLike = DEFAULT_ROOT,
                    device: str | torch.device = "cpu") -> FashionClassifier:
    path = resolve(WEIGHTS["fmnist_classifier"], checkpoint, root, download=False)
    net = FashionClassifier()
    load_into(net, read_checkpoint(path), path, "the Fashion-MNIST classifier")
    return net.to(device).eval()


class FashionExtractor:
    """uint8 RGB (or grey) images [B, H, W, 3] -> (128-d features, 10 logits) of the shipped classifier. Images of
    another size than the classifier's 28x28 (the 16x16-token testbed draws 32x32) are resized to it first
    (antialiased bilinear), the same way for samples and reference images."""

    name = "fmnist-classifier"
    suffix = "_fmnist"  # its scores are the analogues: fid_fmnist, is_fmnist

    def __init__(self, classifier: FashionClassifier | None = None):
        self.net = classifier if classifier is not None else load_classifier()
        self.device = next(self.net.parameters()).device

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = images.to(self.device)
        if x.ndim == 4:
            x = x.float().mean(dim=-1)  # RGB -> grey (the generated images are grey repeated to 3 channels)
        x = (x.float() / 127.5 - 1).unsqueeze(1)
        if x.shape[-1] != 28:
            x = resize(x, 28)
        return self.net.features_and_logits(x)


_REFERENCE: dict[tuple[int, str, int], dict[str, np.ndarray]] = {}


def parse_reference(reference: str) -> tuple[str, int] | None:
    """``fashion_mnist:<split>`` (28x28 originals) or ``fashion_mnist32:<split>`` (the split as the 16x16-token
    testbed is trained on it: resized to 32x32) -> (split, size); None for any other reference."""
    head, _, split = str(reference).partition(":")
    if not split or not head.startswith("fashion_mnist"):
        return None
    size = head[len("fashion_mnist"):]
    if size and not size.isdigit():
        raise GtRError(f"unknown Fashion-MNIST reference {reference!r}: use fashion_mnist:test or "
                       "fashion_mnist32:test")
    return split, int(size or 28)


def reference_statistics(extractor: FashionExtractor, split: str = "test", root=None, size: int = 28
                         ) -> dict[str, np.ndarray]:
    """FID statistics of a Fashion-MNIST split under ``extractor`` (computed once per process), at the image
    size the generator draws (``size`` 32: the split resized as the 16x16-token testbed's training data, stored as
    uint8 like generated PNGs)."""
    key = (id(extractor.net), split, size)
    if key not in _REFERENCE:
        data = FashionMNIST(split, root, normalize=False)
        images = resize(data.images[:, None], size)[:, 0]
        images = images[..., None].expand(-1, -1, -1, 3)
        features, _ = extract(extractor, images.split(1000))
        _REFERENCE[key] = statistics(features)
    return _REFERENCE[key]
