"""The exact scorer of the scenes testbed (:mod:`gtr.data.scenes`): a rule parses an image into its background and
objects, and says whether it shows a valid scene of its class and, if not, every way it fails.

Parsing, on uint8 RGB [32, 32, 3]:
1. Each pixel takes the nearest palette colour (six object colours, three backgrounds) by RGB distance; a pixel
   farther than ``UNCLEAR`` from all of them (a blurred edge) is "unclear".
2. The background is the background colour of most pixels. Everything else is split into 8-connected regions.
3. A region with at least ``MIN_AREA`` object-coloured pixels is an object: its colour is the commonest object
   colour among them, its purity the share of that colour, its shape the template (disc, square, upward
   triangle drawn in the region's bounding box by the generator's own rasteriser) of highest IoU with the
   region's hole-filled object pixels. Any other region of ``MIN_AREA`` pixels or more is a stray blob (a
   smear, a patch of another background colour); smaller ones are edge noise and ignored.

A sample of class ``label`` is **valid** when none of these failures occurs:
``count`` (objects != the class's count), ``shape`` (an object's best template is not the class's shape, or fits
with IoU < ``MIN_IOU``), ``colour`` (the objects do not all share one colour), ``mixed`` (an object's purity is
below ``MIN_PURITY``), ``stray`` (a stray blob), ``background`` (fewer than ``MIN_BACKGROUND`` of the pixels
outside objects are the background colour).
The thresholds were set on ground-truth images and the tokenizer's reconstructions before any sample was scored
(``results/scenes_scorer.md``) and are fixed for every study.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from gtr.data.scenes import BACKGROUNDS, COLOURS, NUM_CLASSES, SHAPES, class_of, shape_mask
from gtr.errors import GtRError

UNCLEAR = 70.0  # RGB distance beyond which a pixel belongs to no palette colour
MIN_AREA = 8  # px: regions this large count (the smallest object, an 8-px triangle, has 36 px)
MIN_IOU = 0.6  # an object's mask against its best template
MIN_PURITY = 0.9  # share of an object's pixels in its commonest colour
MIN_BACKGROUND = 0.97  # share of the non-object pixels in the background colour
FAILURES = ("count", "shape", "colour", "mixed", "stray", "background")

_NAMES = list(COLOURS) + list(BACKGROUNDS)
_PALETTE = np.array(list(COLOURS.values()) + list(BACKGROUNDS.values()), dtype=np.float32)
_N_OBJECT = len(COLOURS)
_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class SceneObject:
    colour: str
    shape: str
    iou: float
    purity: float
    area: int
    box: tuple[int, int, int, int]  # x0, y0, width, height
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)  # bool [H, W]: its hole-filled pixels


@dataclass(frozen=True)
class Parse:
    background: str
    background_share: float
    objects: tuple[SceneObject, ...]
    strays: int

    def check(self, label: int) -> "Outcome":
        count, shape = class_of(label)
        failures = []
        if len(self.objects) != count:
            failures.append("count")
        if any(o.shape != shape or o.iou < MIN_IOU for o in self.objects):
            failures.append("shape")
        if len({o.colour for o in self.objects}) > 1:
            failures.append("colour")
        if any(o.purity < MIN_PURITY for o in self.objects):
            failures.append("mixed")
        if self.strays:
            failures.append("stray")
        if self.background_share < MIN_BACKGROUND:
            failures.append("background")
        return Outcome(not failures, tuple(failures), self)


@dataclass(frozen=True)
class Outcome:
    valid: bool
    failures: tuple[str, ...]
    parse: Parse = field(repr=False)


def _nearest(image: np.ndarray) -> np.ndarray:
    """Per pixel: index into _PALETTE of the nearest colour, or -1 when none is within UNCLEAR."""
    distance = np.linalg.norm(image[..., None, :].astype(np.float32) - _PALETTE, axis=-1)
    nearest = distance.argmin(-1)
    return np.where(distance.min(-1) <= UNCLEAR, nearest, -1)


def _shape(mask: np.ndarray) -> tuple[str, float]:
    """The template of highest IoU with a region's mask, drawn in the mask's bounding box."""
    rows, cols = np.nonzero(mask)
    box = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    best = ("", -1.0)
    for name in SHAPES:
        template = shape_mask(name, *box.shape)
        iou = float((template & box).sum() / (template | box).sum())
        best = max(best, (name, iou), key=lambda t: t[1])
    return best


def parse(image: np.ndarray) -> Parse:
    """Background and objects of one uint8 RGB image [H, W, 3]."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise GtRError(f"the scenes scorer takes uint8 RGB images [H, W, 3], got {image.dtype} {image.shape}")
    nearest = _nearest(image)
    backgrounds = np.bincount(nearest[nearest >= _N_OBJECT] - _N_OBJECT, minlength=len(BACKGROUNDS))
    background = _N_OBJECT + int(backgrounds.argmax())
    regions, n = ndimage.label(nearest != background, structure=_EIGHT)
    objects, strays, object_pixels = [], 0, np.zeros(nearest.shape, dtype=bool)
    for k in range(1, n + 1):
        region = regions == k
        coloured = region & (nearest >= 0) & (nearest < _N_OBJECT)
        if coloured.sum() >= MIN_AREA:
            counts = np.bincount(nearest[coloured], minlength=_N_OBJECT)
            mask = ndimage.binary_fill_holes(coloured)
            shape, iou = _shape(mask)
            rows, cols = np.nonzero(mask)
            objects.append(SceneObject(_NAMES[int(counts.argmax())], shape, iou,
                                       float(counts.max() / counts.sum()), int(coloured.sum()),
                                       (int(cols.min()), int(rows.min()), int(np.ptp(cols)) + 1,
                                        int(np.ptp(rows)) + 1), mask))
            object_pixels |= region
        elif region.sum() >= MIN_AREA:
            strays += 1
    outside = ~object_pixels
    share = float((nearest[outside] == background).sum() / max(1, outside.sum()))
    objects.sort(key=lambda o: (o.box[1], o.box[0]))
    return Parse(_NAMES[background], share, tuple(objects), strays)


def check(image: np.ndarray, label: int) -> Outcome:
    """Is ``image`` a valid scene of class ``label``? (with every failure kind found)"""
    return parse(image).check(label)


@dataclass(frozen=True)
class SceneScores:
    """Per-image outcomes of a batch: ``valid`` [N] bool and ``failures`` {kind: [N] bool}."""
    valid: np.ndarray
    failures: dict[str, np.ndarray]

    @property
    def count(self) -> int:
        return len(self.valid)

    def rates(self) -> dict[str, float]:
        out = {"validity": float(self.valid.mean()) if self.count else float("nan")}
        out.update({f"fail_{k}": float(v.mean()) if self.count else float("nan") for k, v in self.failures.items()})
        return out


def score(images: np.ndarray, labels) -> SceneScores:
    """Exact outcomes of uint8 images [N, H, W, 3] against their class labels [N]."""
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels):
        raise GtRError(f"{len(images)} images but {len(labels)} labels: give one class label per image")
    outcomes = [check(image, int(label)) for image, label in zip(images, labels)]
    return SceneScores(np.array([o.valid for o in outcomes], dtype=bool),
                       {k: np.array([k in o.failures for o in outcomes], dtype=bool) for k in FAILURES})


# ----------------------------------------------------------------------------------------------------------------
# Beside the exact scores: an FID analogue and KID from the scenes classifier's features, through the code that
# scores Inception features (gtr.eval.fid), as the Fashion-MNIST testbeds' analogues.


def load_classifier(checkpoint=None, root=None, device="cpu"):
    """The shipped scenes classifier (``configs/train/classifier_scenes.yaml``)."""
    from gtr.models.classifier import FashionClassifier
    from gtr.weights import DEFAULT_ROOT, WEIGHTS, load_into, read_checkpoint, resolve
    path = resolve(WEIGHTS["scenes_classifier"], checkpoint, root or DEFAULT_ROOT, download=False)
    net = FashionClassifier(num_classes=NUM_CLASSES, in_channels=3, image_size=32)
    load_into(net, read_checkpoint(path), path, "the scenes classifier")
    return net.to(device).eval()


class SceneExtractor:
    """uint8 RGB images [B, 32, 32, 3] -> (128-d features, 12 logits) of the scenes classifier."""

    name = "scenes-classifier"
    suffix = "_scenes"  # its scores are the analogues: fid_scenes, is_scenes, kid_scenes

    def __init__(self, classifier=None):
        self.net = classifier if classifier is not None else load_classifier()
        self.device = next(self.net.parameters()).device

    def __call__(self, images):
        import torch
        with torch.no_grad():
            x = torch.as_tensor(images).to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1
            return self.net.features_and_logits(x)


_REFERENCE: dict = {}


def reference_features(extractor: SceneExtractor, split: str = "test"):
    """Classifier features of a generated split (computed once per process)."""
    from gtr.data.scenes import SPLIT_SEEDS, SPLIT_SIZES, generate
    from gtr.eval.fid import extract
    key = (id(extractor.net), split)
    if key not in _REFERENCE:
        import torch
        images, _ = generate(SPLIT_SIZES[split], SPLIT_SEEDS[split])
        _REFERENCE[key] = extract(extractor, torch.from_numpy(images).split(1000))[0]
    return _REFERENCE[key]


__all__ = ["FAILURES", "Outcome", "Parse", "SceneExtractor", "SceneObject", "SceneScores", "check",
           "load_classifier", "parse", "reference_features", "score"]
