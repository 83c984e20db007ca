"""Scenes: a procedurally generated image distribution whose correctness a rule can decide.

Every image is a function of ``(seed, index)`` alone: no files, integer rasterisation and numpy's PCG64 draws, so
the same index gives the same bytes on any machine. An image is 32x32 RGB (16x16 tokens through the stride-2
``scenes_vae``, the token grid of ImageNet MAR) holding 1-4 non-overlapping objects on a plain background:

- **class** = object count x shape: 12 classes, ``label = 3 * (count - 1) + shape`` (circle 0, square 1,
  triangle 2); every object of an image has the class's shape;
- **colour**: one of six saturated colours, drawn at random per image and shared by all its objects; the class
  does not say which;
- **background**: black, grey or white, drawn at random per image, the same on every pixel;
- **objects**: bounding squares of side 8-16 px (smaller when there are more objects), placed at random with at
  least ``GAP`` px between any two boxes and 1 px from the border; a circle fills its box's inscribed disc, a
  triangle points up with its base on the box's bottom edge.

Why this distribution (the GtR paper's premise, Sec. 3): tokens decoded in the same AR step are sampled
independently, so two tokens that must agree but are decoded together can disagree. Here agreement is required
at every distance: all background tokens share one colour, all objects share one colour, an object's tokens
share its colour and outline, and the number of objects is fixed by the class. A sampler that decodes too many
tokens at once makes mixed backgrounds, two-coloured objects, extra blobs or wrong counts, and
:mod:`gtr.eval.scenes` names each of those failures exactly, with no learned metric in between.

Every scene also has a caption ("three red circles on a white background") for text-to-image use.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from gtr.errors import GtRError

IMAGE_SIZE = 32
SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220), "yellow": (230, 210, 40),
           "magenta": (200, 50, 200), "cyan": (40, 200, 210)}
BACKGROUNDS = {"black": (20, 20, 20), "grey": (120, 120, 120), "white": (235, 235, 235)}
MAX_OBJECTS = 4
NUM_CLASSES = MAX_OBJECTS * len(SHAPES)
GAP = 3  # px between any two objects' boxes: components stay apart after a stride-2 tokenizer's blur
SIZES = {1: (10, 16), 2: (9, 14), 3: (8, 12), 4: (8, 11)}  # box side range (inclusive) by object count
SPLIT_SEEDS = {"train": 0, "test": 1, "val": 2}
SPLIT_SIZES = {"train": 60_000, "test": 10_000, "val": 10_000}
_NUMBERS = ("one", "two", "three", "four")
CLASS_NAMES = tuple(f"{_NUMBERS[c]} {s}{'s' if c else ''}" for c in range(MAX_OBJECTS) for s in SHAPES)


@dataclass(frozen=True)
class Scene:
    """What an image shows: ``boxes`` are (x0, y0, side) in pixels, the box's top-left corner first."""
    count: int
    shape: str
    colour: str
    background: str
    boxes: tuple[tuple[int, int, int], ...]

    @property
    def label(self) -> int:
        return label_of(self.count, self.shape)

    @property
    def caption(self) -> str:
        plural = "s" if self.count > 1 else ""
        return f"{_NUMBERS[self.count - 1]} {self.colour} {self.shape}{plural} on a {self.background} background"


def label_of(count: int, shape: str) -> int:
    return 3 * (count - 1) + SHAPES.index(shape)


def class_of(label: int) -> tuple[int, str]:
    """label -> (object count, shape)."""
    if not 0 <= int(label) < NUM_CLASSES:
        raise GtRError(f"scene label {label} is out of range: use 0..{NUM_CLASSES - 1}")
    return int(label) // 3 + 1, SHAPES[int(label) % 3]


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(index)])))


def _place(rng: np.random.Generator, count: int, accept=None) -> tuple[tuple[int, int, int], ...]:
    """Non-overlapping boxes, by rejection: a box is redrawn until it keeps ``GAP`` px from the others; after 200
    failed draws, or a complete layout that ``accept(boxes)`` (when given) rejects, the whole layout starts again (a
    deterministic function of the generator's stream)."""
    low, high = SIZES[count]
    while True:
        boxes: list[tuple[int, int, int]] = []
        for _ in range(200):
            side = int(rng.integers(low, high + 1))
            x0, y0 = (int(v) for v in rng.integers(1, IMAGE_SIZE - side, size=2))
            if all(x0 >= bx + bs + GAP or bx >= x0 + side + GAP or y0 >= by + bs + GAP or by >= y0 + side + GAP
                   for bx, by, bs in boxes):
                boxes.append((x0, y0, side))
                if len(boxes) == count:
                    if accept is None or accept(boxes):
                        return tuple(boxes)
                    break


def scene(index: int, seed: int = 0, label: int | None = None) -> Scene:
    """The scene of image ``index`` of the stream ``seed`` (of class ``label`` when given, else a uniform class)."""
    rng = _rng(seed, index)
    drawn = int(rng.integers(NUM_CLASSES))
    count, shape = class_of(drawn if label is None else label)
    colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
    background = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    return Scene(count, shape, colour, background, _place(rng, count))


def shape_mask(shape: str, height: int, width: int) -> np.ndarray:
    """Boolean [height, width] mask of ``shape`` filling a box of that size, in exact integer arithmetic on
    doubled pixel-centre coordinates (u, v in 1, 3, ..., 2n - 1): an ellipse (a disc in a square box), the whole
    box, or an upward triangle with its base on the bottom row."""
    v = (2 * np.arange(height) + 1)[:, None].astype(np.int64)
    u = (2 * np.arange(width) + 1)[None, :].astype(np.int64)
    if shape == "circle":
        return (u - width) ** 2 * height ** 2 + (v - height) ** 2 * width ** 2 <= width ** 2 * height ** 2
    if shape == "square":
        return np.ones((height, width), dtype=bool)
    if shape == "triangle":
        return 2 * height * np.abs(u - width) <= (v + 1) * width  # +1: the apex row is never empty
    raise GtRError(f"unknown shape {shape!r}: use one of {', '.join(SHAPES)}")


def render(s: Scene) -> np.ndarray:
    """uint8 [32, 32, 3] image of a scene (hard edges, exact palette colours)."""
    image = np.empty((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    image[:] = BACKGROUNDS[s.background]
    for x0, y0, side in s.boxes:
        box = image[y0:y0 + side, x0:x0 + side]
        box[shape_mask(s.shape, side, side)] = COLOURS[s.colour]
    return image


def generate(count: int, seed: int = 0, start: int = 0, labels=None) -> tuple[np.ndarray, np.ndarray]:
    """Images ``start .. start + count`` of stream ``seed``: uint8 [count, 32, 32, 3] and int64 labels [count].
    With ``labels`` (one per image), each image is drawn from that class (the rest of its scene from its index)."""
    if labels is not None and len(labels) != count:
        raise GtRError(f"{len(labels)} labels for {count} images: give one label per image")
    scenes = [scene(start + i, seed, None if labels is None else int(labels[i])) for i in range(count)]
    images = np.stack([render(s) for s in scenes]) if scenes else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    return images, np.array([s.label for s in scenes], dtype=np.int64)


class Scenes(Dataset):
    """A split of the scenes distribution (train 60k from seed 0, test and val 10k each from seeds 1 and 2), held
    in memory: (image, label) pairs, images float [3, 32, 32] in [-1, 1] (``normalize=True``) or uint8
    [32, 32, 3]."""

    def __init__(self, split: str = "train", normalize: bool = True, size: int | None = None):
        if split not in SPLIT_SEEDS:
            raise GtRError(f"unknown scenes split {split!r}: use one of {', '.join(SPLIT_SEEDS)}")
        self.split, self.normalize = split, normalize
        images, labels = generate(SPLIT_SIZES[split] if size is None else size, SPLIT_SEEDS[split])
        self.images, self.labels = torch.from_numpy(images), torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = self.images[index]
        return (to_model_range(image[None])[0] if self.normalize else image), self.labels[index]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images [N, 3, 32, 32] in [-1, 1] and labels [N], for in-memory training loops."""
        return to_model_range(self.images), self.labels


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float [N, 3, H, W] in [-1, 1]."""
    return images.permute(0, 3, 1, 2).float() / 127.5 - 1


__all__ = ["BACKGROUNDS", "CLASS_NAMES", "COLOURS", "IMAGE_SIZE", "NUM_CLASSES", "SHAPES", "Scene", "Scenes",
           "class_of", "generate", "label_of", "render", "scene", "shape_mask"]
