"""GenEval's decision rules (Ghosh et al., NeurIPS 2023; ``evaluation/evaluate_images.py`` of djghosh13/geneval
af4902f): which detections count, and whether an image satisfies its prompt's ``include``/``exclude`` clauses.

Pure numpy: the detector and the colour classifier are passed in, so every rule is testable on synthetic
detections. The official behaviour is kept where it is surprising, and said so:
- a counting prompt raises the score threshold for *every* class (0.9 instead of 0.3);
- colour and position are judged on the ``count`` most confident objects only;
- a position clause fails as soon as one found object is not in the relation to one object of its target group;
- ``exclude`` fails the image when ``count`` or more objects are found (over-counting).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np

COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
# The detector's 80 COCO classes in COCO order (its class indices), with GenEval's names
# (evaluation/object_names.txt: tv, computer mouse, tv remote, computer keyboard, ...).
OBJECT_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant",
    "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet",
    "tv", "laptop", "computer mouse", "tv remote", "computer keyboard", "cell phone", "microwave", "oven", "toaster",
    "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)


class Detection(NamedTuple):
    """One detected object: ``box`` = [x0, y0, x1, y1, score] (mmdet's result rows), ``mask`` bool [H, W] or None."""
    box: np.ndarray
    mask: np.ndarray | None


@dataclass(frozen=True)
class Thresholds:
    """The official defaults (``--options`` of evaluate_images.py: threshold, counting_threshold, max_objects,
    max_overlap, position_threshold)."""
    score: float = 0.3
    counting_score: float = 0.9
    max_objects: int = 16  # per class
    max_overlap: float = 1.0  # IoU above which a lower-scored box of the same class is dropped; 1.0 = no NMS
    position: float = 0.1

    def __post_init__(self):
        from gtr.errors import GtRError
        for name in ("score", "counting_score", "max_overlap", "position"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise GtRError(f"geneval.thresholds.{name}={value!r}: a threshold is a number in [0, 1] "
                               f"(the official default is {getattr(Thresholds, name)})")
        if isinstance(self.max_objects, bool) or not isinstance(self.max_objects, int) or self.max_objects < 1:
            raise GtRError(f"geneval.thresholds.max_objects={self.max_objects!r}: give an integer >= 1 (the official "
                           "default is 16)")


# colours(found objects, class name) -> one colour name per object
ColorFn = Callable[[Sequence[Detection], str], list[str]]


def compute_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU with GenEval's inclusive-pixel (+1) areas."""
    def area(box):
        return max(box[2] - box[0] + 1, 0) * max(box[3] - box[1] + 1, 0)
    inter = area([max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])])
    union = area(a) + area(b) - inter
    return inter / union if union else 0


def select_objects(per_class: Sequence[tuple[np.ndarray, Sequence[np.ndarray] | None]], classnames: Sequence[str],
                   tag: str, thresholds: Thresholds = Thresholds()) -> dict[str, list[Detection]]:
    """The objects that count, per class name, most confident first: scores above the threshold (the counting one
    for counting prompts), at most ``max_objects`` per class, then greedy same-class NMS at ``max_overlap``.
    ``per_class[c]`` = (boxes [N, 5], masks [N, H, W] or None) for class index c, as mmdet returns them."""
    threshold = thresholds.counting_score if tag == "counting" else thresholds.score
    found = {}
    for (boxes, masks), name in zip(per_class, classnames):
        boxes = np.asarray(boxes).reshape(-1, 5)  # dtype kept: float32 scores meet the threshold as officially
        order = np.argsort(boxes[:, 4])[::-1]
        order = order[boxes[order, 4] > threshold][:thresholds.max_objects].tolist()
        kept = []
        while order:
            best = order.pop(0)
            kept.append(Detection(boxes[best], None if masks is None else np.asarray(masks[best])))
            if thresholds.max_overlap < 1:
                order = [i for i in order if compute_iou(boxes[best], boxes[i]) < thresholds.max_overlap]
        if kept:
            found[name] = kept
    return found


def relative_position(a: Detection, b: Detection, threshold: float = 0.1) -> set[str]:
    """Where A is relative to B: the centre offset, each axis shrunk by ``threshold`` x the summed box sizes (so
    boxes side by side must clear each other), divided by the unshrunk offset's length; a component beyond 0.5
    names a relation (image y grows downwards)."""
    boxes = np.array([a.box[:4], b.box[:4]]).reshape(2, 2, 2)
    center_a, center_b = boxes.mean(axis=-2)
    size_a, size_b = np.abs(np.diff(boxes, axis=-2))[..., 0, :]
    offset = center_a - center_b
    revised = np.maximum(np.abs(offset) - threshold * (size_a + size_b), 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    relations = set()
    if dx < -0.5:
        relations.add("left of")
    if dx > 0.5:
        relations.add("right of")
    if dy < -0.5:
        relations.add("above")
    if dy > 0.5:
        relations.add("below")
    return relations


def evaluate(objects: dict[str, list[Detection]], metadata: dict, colors: ColorFn,
             thresholds: Thresholds = Thresholds()) -> tuple[bool, str]:
    """(correct, reason) of one image: every ``include`` clause holds (AND) and no ``exclude`` clause is hit (OR).
    ``reason`` lists the failed clauses in the official wording, one per line."""
    correct = True
    reasons = []
    groups: list[list[Detection] | None] = []  # the matched objects of each include clause, for position targets
    for req in metadata.get("include", []):
        name, count = req["class"], req["count"]
        found = objects.get(name, [])[:count]
        matched = len(found) >= count
        if not matched:
            reasons.append(f"expected {name}>={count}, found {len(found)}")
        else:
            if "color" in req:
                predicted = colors(found, name)
                if predicted.count(req["color"]) < count:
                    matched = False
                    named = [c for c in COLORS if c in predicted] + sorted(set(predicted) - set(COLORS))
                    reasons.append(f"expected {req['color']} {name}>={count}, found "
                                   f"{predicted.count(req['color'])} {req['color']}; and "
                                   + ", ".join(f"{predicted.count(c)} {c}" for c in named))
            if "position" in req and matched:
                relation, target = req["position"]
                if groups[target] is None:
                    matched = False
                    reasons.append(f"no target for {name} to be {relation}")
                else:
                    matched, found_relations = _all_in_relation(found, groups[target], relation, thresholds.position)
                    if not matched:
                        reasons.append(f"expected {name} {relation} target, found "
                                       f"{' and '.join(found_relations)} target")
        correct &= matched
        groups.append(found if matched else None)
    for req in metadata.get("exclude", []):
        name = req["class"]
        if len(objects.get(name, [])) >= req["count"]:
            correct = False
            reasons.append(f"expected {name}<{req['count']}, found {len(objects[name])}")
    return correct, "\n".join(reasons)


def _all_in_relation(found: list[Detection], targets: list[Detection], relation: str,
                     threshold: float) -> tuple[bool, set[str]]:
    """Whether every found object is ``relation`` every target; else False and the first failing pair's
    relations."""
    for obj in found:
        for target in targets:
            relations = relative_position(obj, target, threshold)
            if relation not in relations:
                return False, relations
    return True, set()
