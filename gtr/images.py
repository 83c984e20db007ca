"""Writing images: single PNGs (atomically), a labelled grid with one row per class, a sheet of captioned rows, and
matplotlib (an extra) for plots."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from gtr.files import atomic_path


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in label order (shipped with torchvision, no download)."""
    from torchvision.models import ResNet50_Weights
    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def save_png(image: np.ndarray | torch.Tensor, path: str | os.PathLike) -> None:
    """Save an [H, W, 3] (or [H, W]) uint8 image; a reader never sees a half-written file."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image)).save(tmp, format="PNG")


def labelled_grid(images: torch.Tensor, row_labels: Sequence[str], pad: int = 2,
                  label_width: int | None = None) -> np.ndarray:
    """Arrange uint8 images [R*K, H, W, 3] (row-major) into R rows of K with each row's label on its left."""
    rows = len(row_labels)
    n, h, w, _ = images.shape
    per_row = n // rows
    font = ImageFont.load_default(size=max(10, h // 8))
    if label_width is None:
        label_width = max(int(font.getlength(label)) for label in row_labels) + 2 * pad + 4
    canvas = Image.new("RGB", (label_width + per_row * (w + pad) + pad, rows * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for r, label in enumerate(row_labels):
        top = pad + r * (h + pad)
        draw.text((pad + 2, top + h // 2), label, fill="black", font=font, anchor="lm")
        for k in range(per_row):
            tile = Image.fromarray(images[r * per_row + k].numpy())
            canvas.paste(tile, (label_width + pad + k * (w + pad), top))
    return np.asarray(canvas)


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (the ``plots`` extra), for every figure of the project."""
    from gtr.errors import require
    matplotlib = require("matplotlib", "plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def sample_sheet(rows: Sequence[tuple[str, Sequence[tuple]]], path: Path, scale: int = 3) -> None:
    """A PNG of labelled image rows: ``rows`` = [(row title, [(uint8 image [H, W, 3], caption), ...]), ...], each
    image enlarged ``scale`` times (nearest); a caption other than "valid" (a failure) is drawn in red."""
    pad, title_h, caption_h = 4, 16, 14
    side = rows[0][1][0][0].shape[0] * scale
    cols = max(len(items) for _, items in rows)
    height = len(rows) * (title_h + side + caption_h + pad) + pad
    canvas = Image.new("RGB", (cols * (side + pad) + pad, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=10)
    y = pad
    for title, items in rows:
        draw.text((pad, y), title, fill="black", font=font)
        y += title_h
        for c, (image, caption) in enumerate(items):
            x = pad + c * (side + pad)
            canvas.paste(Image.fromarray(image).resize((side, side), Image.NEAREST), (x, y))
            draw.text((x, y + side + 1), caption, fill="black" if caption == "valid" else "firebrick", font=font)
        y += side + caption_h + pad
    canvas.save(path)
