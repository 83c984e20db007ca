"""GenEval's object detector, Mask2Former (Swin-S, COCO instance), run as mmdetection 2.x runs it inside the
official evaluator, on the maintained ``transformers`` implementation.

What ``inference_detector`` does and is kept here (docs/lightgen_geneval.md Sec. 2.4):
- test pipeline: keep-ratio resize to fit (1333, 800) -- a 512^2 image becomes 800^2 -- with OpenCV's bilinear
  uint8 arithmetic (``mmcv.imrescale``); ImageNet mean/std on 0-255 RGB; zero padding to a multiple of 32;
- mask logits upsampled (bilinear) to the padded input, cropped to the resized image, upsampled to the original
  size, binarised at logit > 0;
- instance post-processing: softmax over the 81 classes without "no object", the top 100 (query, class) pairs over
  the flattened scores (one query may give several classes), score = class probability x mean mask probability
  inside its mask, box = the mask's extent with mmdet's +1 on the far edges.

The two weight choices, which every result names (``Detector.label``):
- ``mmdet``: the official evaluator's checkpoint converted key by key (:mod:`gtr.eval.geneval.convert`): "GenEval";
- ``hf``: a hub Mask2Former COCO instance checkpoint (default ``facebook/mask2former-swin-small-coco-instance``,
  detectron2-trained, other weights): "GenEval (HF detector)", never plain "GenEval".
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gtr.errors import GtRError, require
from gtr.eval.geneval.rules import OBJECT_NAMES

HF_DETECTOR = "facebook/mask2former-swin-small-coco-instance"
IMAGENET_MEAN = (123.675, 116.28, 103.53)  # mmdet's img_norm_cfg, RGB, 0-255
IMAGENET_STD = (58.395, 57.12, 57.375)
LABELS = {"mmdet": "GenEval", "hf": "GenEval (HF detector)"}


def check_kind(kind: str) -> None:
    if kind not in LABELS:
        raise GtRError(f"unknown detector {kind!r}: choose mmdet (the official checkpoint, converted) or hf (a hub "
                       f"Mask2Former, reported as 'GenEval (HF detector)')")


class Detector:
    """``detector(image)`` -> per class index (COCO order): (boxes [N, 5] float32 = x0, y0, x1, y1, score;
    masks bool [N, H, W]), like mmdet's ``(bbox_results, mask_results)``."""

    def __init__(self, model, kind: str, device: str | torch.device = "cpu", scale: tuple[int, int] = (1333, 800),
                 size_divisor: int = 32, max_per_image: int = 100):
        check_kind(kind)
        num_classes = model.config.num_labels
        if num_classes != len(OBJECT_NAMES):
            raise GtRError(f"the detector predicts {num_classes} classes, GenEval needs the 80 COCO classes: use a "
                           f"COCO instance-segmentation Mask2Former")
        self.model = model.eval()
        self.kind, self.label = kind, LABELS[kind]
        self.to(device)
        self.scale, self.size_divisor, self.max_per_image = scale, size_divisor, max_per_image

    classnames = OBJECT_NAMES  # the class of each output index

    @property
    def identity(self) -> str:
        """The weights it runs (part of a resumable scoring's key)."""
        return self.model.config._name_or_path

    def to(self, device: str | torch.device) -> "Detector":
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def preprocess(self, image: Image.Image) -> tuple[torch.Tensor, tuple[int, int]]:
        """The normalised, padded input [1, 3, Hp, Wp] and the resized (unpadded) size."""
        rgb = torch.from_numpy(np.array(image.convert("RGB")))
        h, w = rgb.shape[:2]
        long_edge, short_edge = max(self.scale), min(self.scale)
        factor = min(long_edge / max(h, w), short_edge / min(h, w))  # mmcv.rescale_size
        size = (int(h * factor + 0.5), int(w * factor + 0.5))
        resized = opencv_linear_resize(rgb, size).permute(2, 0, 1)[None].float()
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        x = (resized - mean) / std
        pad_h = -size[0] % self.size_divisor
        pad_w = -size[1] % self.size_divisor
        return F.pad(x, (0, pad_w, 0, pad_h)), size

    @torch.no_grad()
    def __call__(self, image: Image.Image) -> list[tuple[np.ndarray, np.ndarray]]:
        x, (h, w) = self.preprocess(image)
        out = self.model(pixel_values=x.to(self.device))
        logits = out.class_queries_logits[0].float()
        masks = out.masks_queries_logits[0].float()
        masks = F.interpolate(masks[None], size=x.shape[-2:], mode="bilinear", align_corners=False)[0]
        masks = F.interpolate(masks[None, :, :h, :w], size=(image.height, image.width), mode="bilinear",
                              align_corners=False)[0]
        return self.postprocess(logits, masks)

    def postprocess(self, class_logits: torch.Tensor, mask_logits: torch.Tensor) -> list[tuple[np.ndarray,
                                                                                                 np.ndarray]]:
        """mmdet's ``MaskFormerFusionHead.instance_postprocess`` and ``bbox2result``: ``class_logits`` [Q, C+1],
        ``mask_logits`` [Q, H, W] at the original image size."""
        num_classes = class_logits.shape[1] - 1
        scores = class_logits.softmax(-1)[:, :-1].flatten()
        k = min(self.max_per_image, scores.numel())
        top_scores, top = scores.topk(k, sorted=False)
        labels, queries = top % num_classes, top // num_classes
        mask_logits = mask_logits[queries]
        binary = mask_logits > 0
        mask_scores = (mask_logits.sigmoid() * binary).flatten(1).sum(1) / (binary.flatten(1).sum(1) + 1e-6)
        det_scores = top_scores * mask_scores
        boxes = torch.cat([mask_to_box(binary), det_scores[:, None]], dim=1).cpu().numpy().astype(np.float32)
        binary, labels = binary.cpu().numpy(), labels.cpu().numpy()
        empty_masks = np.zeros((0, *binary.shape[1:]), dtype=bool)
        return [(boxes[labels == c], binary[labels == c]) if (labels == c).any()
                else (np.zeros((0, 5), np.float32), empty_masks) for c in range(num_classes)]


def _linear_taps(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices and 11-bit fixed-point weights of OpenCV's INTER_LINEAR along one axis: half-pixel centres
    computed in float32, indices clamped at the borders with the fractional weight kept."""
    x = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (1.0 / (n_out / n_in)) - 0.5).float()
    i0 = torch.floor(x)
    frac = x - i0
    w1 = torch.round(frac * 2048).long()  # saturate_cast<short>: round half to even, as torch.round
    w0 = torch.round((1 - frac) * 2048).long()
    i0 = i0.long()
    return i0.clamp(0, n_in - 1), (i0 + 1).clamp(0, n_in - 1), w0, w1


def opencv_linear_resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)`` of a uint8 [H, W, C] image, in OpenCV's integer
    arithmetic (horizontal pass at 2^11 scale, vertical pass of its x86 SIMD kernel, which drops 4 bits before
    weighting). mmcv resizes GenEval's images this way inside the detector's test pipeline; identical to OpenCV
    5.0 on x86 on 512^2 -> 800^2 and 300x500 -> 800x1333 images (``scripts/check_geneval_resize.py``)."""
    h, w = size
    y0, y1, b0, b1 = _linear_taps(image.shape[0], h)
    x0, x1, a0, a1 = _linear_taps(image.shape[1], w)
    src = image.long()
    rows = src[:, x0] * a0[None, :, None] + src[:, x1] * a1[None, :, None]  # [H_in, w, C] at 2^11
    top, bottom = rows[y0] >> 4, rows[y1] >> 4
    out = (((b0[:, None, None] * top) >> 16) + ((b1[:, None, None] * bottom) >> 16) + 2) >> 2
    return out.clamp(0, 255).to(torch.uint8)


def mask_to_box(masks: torch.Tensor) -> torch.Tensor:
    """mmdet's ``mask2bbox``: [x_min, y_min, x_max + 1, y_max + 1] of each bool mask [N, H, W]; zeros if empty."""
    boxes = torch.zeros(masks.shape[0], 4, device=masks.device)
    cols, rows = masks.any(dim=1), masks.any(dim=2)
    for i in range(masks.shape[0]):
        x, y = torch.where(cols[i])[0], torch.where(rows[i])[0]
        if len(x) and len(y):
            boxes[i] = torch.stack([x[0], y[0], x[-1] + 1, y[-1] + 1]).float()
    return boxes


def load_detector(kind: str, path: str | os.PathLike | None = None, root: str | os.PathLike = "pretrained_models",
                  download: bool = True, device: str | torch.device = "cpu") -> Detector:
    """The GenEval detector: ``mmdet`` = the official mmdet checkpoint (``path`` or the weights root), converted;
    ``hf`` = a transformers Mask2Former (hub id or local folder; default ``facebook/mask2former-swin-small-coco-
    instance``)."""
    check_kind(kind)
    if kind == "mmdet":
        from gtr.eval.geneval.convert import mmdet_to_hf
        from gtr.weights import WEIGHTS, resolve
        return Detector(mmdet_to_hf(resolve(WEIGHTS["geneval_mask2former"], path, root, download)), kind, device)
    require("transformers", "t2i")
    from transformers import Mask2FormerForUniversalSegmentation
    from gtr.weights import offline
    name = str(path or HF_DETECTOR)
    try:
        model = Mask2FormerForUniversalSegmentation.from_pretrained(
            name, local_files_only=offline() or not download or Path(name).is_dir())
    except OSError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GtRError(f"HF Mask2Former detector {name!r} not found ({first}): `huggingface-cli download "
                       f"{HF_DETECTOR}` when online, or set geneval.detector_path=<local folder>") from None
    return Detector(model, kind, device)
