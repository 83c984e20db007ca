"""GenEval's detector and colour classifier for the text-to-image scenes (:mod:`gtr.data.scene_prompts`), by rule:
the scenes parser (:func:`gtr.eval.scenes.parse`) plays Mask2Former and a palette lookup plays CLIP, so GenEval's
own rules (:mod:`gtr.eval.geneval.rules`), scorer and summary score the testbed with no learned model in between.

- **Detections**: each object the parser finds whose best shape template fits with IoU >= ``MIN_IOU`` (the
  class-conditional scorer's threshold) is one detection of that shape, score 1.0 (above GenEval's counting
  threshold 0.9), box [x0, y0, x1, y1] with exclusive far edges (mmdet's ``mask2bbox``), mask = its hole-filled
  pixels. A malformed object (no template fits) is not detected, so a prompt asking for it fails, as GenEval's
  detector would miss it.
- **Colours**: the commonest palette colour among a detection's object-coloured pixels, when it holds at least
  ``MIN_PURITY`` of them; otherwise "mixed", which no prompt asks for (a two-coloured object fails its colour
  clause).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from gtr.data.scenes import COLOURS, SHAPES
from gtr.eval.geneval.rules import Detection
from gtr.eval.scenes import MIN_IOU, MIN_PURITY, UNCLEAR, _N_OBJECT, _NAMES, _nearest, parse

LABEL = "GenEval rules, exact scenes detector"
MIXED = "mixed"


def _rgb(image: Image.Image | np.ndarray) -> np.ndarray:
    return np.asarray(image.convert("RGB")) if isinstance(image, Image.Image) else np.asarray(image)


class SceneDetector:
    """``detector(image)`` -> per shape (:data:`gtr.data.scenes.SHAPES` order): (boxes [N, 5] float32, masks bool
    [N, H, W]), the form :func:`gtr.eval.geneval.rules.select_objects` takes."""

    classnames = SHAPES
    label = LABEL
    identity = f"scenes-parser(unclear={UNCLEAR}, min_iou={MIN_IOU}, min_purity={MIN_PURITY})"

    def to(self, device) -> "SceneDetector":  # a rule runs anywhere
        return self

    def __call__(self, image: Image.Image | np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        rgb = _rgb(image)
        found = {shape: [] for shape in SHAPES}
        for obj in parse(rgb).objects:
            if obj.iou >= MIN_IOU:
                x0, y0, w, h = obj.box
                found[obj.shape].append((np.array([x0, y0, x0 + w, y0 + h, 1.0], np.float32), obj.mask))
        empty = np.zeros((0, *rgb.shape[:2]), dtype=bool)
        return [(np.stack([b for b, _ in found[s]]), np.stack([m for _, m in found[s]])) if found[s]
                else (np.zeros((0, 5), np.float32), empty) for s in SHAPES]


class SceneColors:
    """``colors(image, objects, classname)`` -> one palette colour name (or ``"mixed"``) per detection."""

    classnames = tuple(COLOURS)
    identity = f"scenes-palette(unclear={UNCLEAR}, min_purity={MIN_PURITY})"

    def to(self, device) -> "SceneColors":
        return self

    def __call__(self, image: Image.Image | np.ndarray, objects: Sequence[Detection], classname: str) -> list[str]:
        nearest = _nearest(_rgb(image))
        out = []
        for obj in objects:
            pixels = nearest[np.asarray(obj.mask, dtype=bool)]
            counts = np.bincount(pixels[(pixels >= 0) & (pixels < _N_OBJECT)], minlength=_N_OBJECT)
            total = counts.sum()
            out.append(_NAMES[int(counts.argmax())] if total and counts.max() >= MIN_PURITY * total else MIXED)
        return out


__all__ = ["LABEL", "MIXED", "SceneColors", "SceneDetector"]
