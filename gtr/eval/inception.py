"""The paper's feature extractor: torch-fidelity's Inception-v3, the TF-compatible port used for FID/IS on
ImageNet (2048-d pool features for FID, unbiased 1008-way logits for IS). Its weights go through the project's
resolver (local path, ``<weights.root>/inception/...``, download when online, one-line error) and are read safely;
torch-fidelity itself would unpickle a local file with ``weights_only=False``, so it only ever receives a copy the
project wrote from plain tensors."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3

from gtr.errors import GtRError
from gtr.weights import DEFAULT_ROOT, WeightFile, read_checkpoint, resolve, select_state_dict

INCEPTION = WeightFile("Inception-v3 (torch-fidelity, TF-compatible)",
                       "inception/weights-inception-2015-12-05-6726825d.pth", URL_INCEPTION_V3, 91,
                       "metrics.inception")


class InceptionExtractor:
    """uint8 images [B, H, W, 3] -> (2048-d features, 1008 unbiased logits), resized inside as TF 1.x does."""

    name = "inception-v3-compat"
    suffix = ""  # the paper's metrics themselves: fid, is

    def __init__(self, checkpoint: str | os.PathLike | None = None, root: str | os.PathLike = DEFAULT_ROOT,
                 download: bool = True, device: str | torch.device = "cpu"):
        path = resolve(INCEPTION, checkpoint, root, download)
        state_dict = select_state_dict(read_checkpoint(path), "state_dict", path)
        with tempfile.TemporaryDirectory() as folder:
            plain = Path(folder) / "inception.pth"
            torch.save({k: v.contiguous() for k, v in state_dict.items()}, plain)  # tensors only: safe to unpickle
            try:
                self.net = FeatureExtractorInceptionV3(self.name, ["2048", "logits_unbiased"],
                                                       feature_extractor_weights_path=str(plain))
            except RuntimeError as err:
                first = str(err).strip().splitlines()[0]
                raise GtRError(f"{path} does not fit torch-fidelity's Inception-v3 ({first}); use "
                               f"{Path(INCEPTION.relpath).name} from {URL_INCEPTION_V3}") from None
        self.device = torch.device(device)
        self.net.to(self.device)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise GtRError(f"Inception features need uint8 images [B, H, W, 3], got {images.dtype} "
                           f"{tuple(images.shape)}")
        features, logits = self.net(images.permute(0, 3, 1, 2).to(self.device))
        return features, logits
