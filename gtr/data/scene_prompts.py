"""Text-to-image scenes: GenEval's six tasks written in the scenes testbed's vocabulary (:mod:`gtr.data.scenes`),
with a caption per image and an evaluation set in GenEval's ``evaluation_metadata.jsonl`` format.

Vocabulary: GenEval's object classes are the three shapes (circle, square, triangle), its colours the six object
colours of the palette (red, green, blue, yellow, magenta, cyan). Prompts follow GenEval's templates word for word:

=============  ============================================  ==========================================================
task           prompt                                        the image shows
=============  ============================================  ==========================================================
single_object  a photo of a circle                           one circle, any colour
two_object     a photo of a circle and a square              one of each shape, any colours
counting       a photo of three triangles                    2, 3 or 4 objects of the shape, one shared colour
colors         a photo of a red square                       one object of that shape and colour
position       a photo of a circle left of a square          the square, and the circle in that relation to it
color_attr     a photo of a red circle and a blue triangle   two shapes, each in its colour
=============  ============================================  ==========================================================

Anything a prompt does not say is drawn per image: the background (black, grey or white), a colour not named
(per object; shared by all objects of a counting scene, as in the class-conditional scenes), sizes and positions
(boxes of side 8-16 px, :data:`gtr.data.scenes.SIZES`, at least ``GAP`` px apart). A position scene is redrawn until
GenEval's own position rule (:func:`gtr.eval.geneval.rules.relative_position`) finds the relation with twice the
official margin (0.2 instead of 0.1), so ground truth passes the rule with room to spare.

Held out: a third of the colour, position and colour-attribution prompts (a fixed, seeded choice,
:data:`HELD_OUT_FRACTION`) never appear in training; the evaluation set asks only for those. The single-object,
two-object and counting tasks have 3, 6 and 9 prompts in all, too few to hold any out: their evaluation prompts are
training prompts (as a class-conditional model is evaluated on its training classes), which the report says.

The evaluation set has GenEval's size per task (80, 99, 80, 94, 100, 100: 553 records), each task's prompts taken
in turn from a seeded order, so every evaluation prompt is asked about equally often.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gtr.data.scenes import BACKGROUNDS, COLOURS, IMAGE_SIZE, SHAPES, _place, _rng, shape_mask
from gtr.errors import GtRError

TASKS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")  # GenEval's order
TASK_SIZES = {"single_object": 80, "two_object": 99, "counting": 80, "colors": 94, "position": 100,
              "color_attr": 100}  # records per task in GenEval's evaluation_metadata.jsonl (553 in all)
RELATIONS = ("left of", "right of", "above", "below")
COUNTS = {2: "two", 3: "three", 4: "four"}
HELD_OUT_FRACTION = 1 / 3
HELD_OUT_TASKS = ("colors", "position", "color_attr")
HELD_OUT_SEED = 31
LAYOUT_MARGIN = 0.2  # position scenes: the relation holds under GenEval's rule at this threshold (official 0.1)
SPLIT_SEEDS = {"train": 10, "test": 11}
TRAIN_SIZE = 60_000


@dataclass(frozen=True)
class Item:
    """One object a prompt asks for: its shape, and its colour when the prompt names one."""
    shape: str
    colour: str | None = None


@dataclass(frozen=True)
class Prompt:
    """A prompt of one of GenEval's tasks and what it asks for. ``relation`` (position prompts): object 1 is
    ``relation`` object 0 (GenEval's metadata lists the target first)."""
    task: str
    text: str
    items: tuple[Item, ...]
    relation: str | None = None

    def metadata(self) -> dict:
        """The prompt's GenEval record (``tag``, ``include``, ``exclude`` on counting, ``prompt``)."""
        if self.task == "counting":
            n = len(self.items)
            return {"tag": self.task, "include": [{"class": self.items[0].shape, "count": n}],
                    "exclude": [{"class": self.items[0].shape, "count": n + 1}], "prompt": self.text}
        include = []
        for index, item in enumerate(self.items):
            clause = {"class": item.shape, "count": 1}
            if item.colour:
                clause["color"] = item.colour
            if self.relation and index == 1:
                clause["position"] = [self.relation, 0]
            include.append(clause)
        return {"tag": self.task, "include": include, "prompt": self.text}


def _a(shape: str, colour: str | None = None) -> str:
    return f"a {colour} {shape}" if colour else f"a {shape}"


@lru_cache(maxsize=None)
def all_prompts() -> dict[str, tuple[Prompt, ...]]:
    """Every prompt of each task, in a fixed order."""
    pairs = [(a, b) for a in SHAPES for b in SHAPES if a != b]
    colours = list(COLOURS)
    return {
        "single_object": tuple(Prompt("single_object", f"a photo of {_a(s)}", (Item(s),)) for s in SHAPES),
        "two_object": tuple(Prompt("two_object", f"a photo of {_a(a)} and {_a(b)}", (Item(a), Item(b)))
                            for a, b in pairs),
        "counting": tuple(Prompt("counting", f"a photo of {word} {s}s", (Item(s),) * n)
                          for s in SHAPES for n, word in COUNTS.items()),
        "colors": tuple(Prompt("colors", f"a photo of {_a(s, c)}", (Item(s, c),)) for s in SHAPES for c in colours),
        # GenEval: "a photo of A <relation> B"; its metadata names B (the target) first, then A with the relation.
        "position": tuple(Prompt("position", f"a photo of {_a(a)} {r} {_a(b)}", (Item(b), Item(a)), r)
                          for a, b in pairs for r in RELATIONS),
        "color_attr": tuple(Prompt("color_attr", f"a photo of {_a(a, ca)} and {_a(b, cb)}", (Item(a, ca), Item(b, cb)))
                            for a, b in pairs for ca in colours for cb in colours if ca != cb),
    }


@lru_cache(maxsize=None)
def held_out() -> frozenset[str]:
    """The prompts kept out of training: a seeded third of each task in :data:`HELD_OUT_TASKS`."""
    rng = np.random.Generator(np.random.PCG64(HELD_OUT_SEED))
    chosen = []
    for task in HELD_OUT_TASKS:
        prompts = all_prompts()[task]
        k = round(len(prompts) * HELD_OUT_FRACTION)
        chosen += [prompts[i].text for i in rng.permutation(len(prompts))[:k]]
    return frozenset(chosen)


def training_prompts(task: str) -> tuple[Prompt, ...]:
    return tuple(p for p in all_prompts()[task] if p.text not in held_out())


def evaluation_prompts(task: str) -> tuple[Prompt, ...]:
    prompts = all_prompts()[task]
    return tuple(p for p in prompts if p.text in held_out()) if task in HELD_OUT_TASKS else prompts


def evaluation_metadata() -> list[dict]:
    """The evaluation set: :data:`TASK_SIZES` records per task, in GenEval's task order, each task's evaluation
    prompts taken in turn from a seeded order."""
    rng = np.random.Generator(np.random.PCG64(HELD_OUT_SEED + 1))
    records = []
    for task in TASKS:
        prompts = evaluation_prompts(task)
        order = rng.permutation(len(prompts))
        records += [prompts[order[i % len(prompts)]].metadata() for i in range(TASK_SIZES[task])]
    return records


def metadata_text() -> str:
    """``evaluation_metadata.jsonl`` of the evaluation set (GenEval's key order: tag, include, exclude, prompt)."""
    return "".join(json.dumps(record) + "\n" for record in evaluation_metadata())


def vocabulary() -> tuple[str, ...]:
    """Every word of every prompt (training and evaluation), sorted."""
    return tuple(sorted({w for prompts in all_prompts().values() for p in prompts for w in p.text.split()}))


def parse_prompt(text: str) -> Prompt:
    """The :class:`Prompt` of a prompt text in the testbed's templates, or a one-line error listing them."""
    for prompts in all_prompts().values():
        for p in prompts:
            if p.text == text:
                return p
    raise GtRError(f"{text!r} is not a scenes prompt: use GenEval's templates with shapes {', '.join(SHAPES)} and "
                   f"colours {', '.join(COLOURS)}, e.g. 'a photo of two circles', 'a photo of a red square and a "
                   "blue triangle', 'a photo of a circle left of a square'")


# ----------------------------------------------------------------------------------------------------------------
# Images


@dataclass(frozen=True)
class Layout:
    """A rendered scene: its background and objects as (shape, colour, (x0, y0, side))."""
    background: str
    objects: tuple[tuple[str, str, tuple[int, int, int]], ...]


def _boxes(rng: np.random.Generator, count: int, relation: str | None) -> tuple[tuple[int, int, int], ...]:
    """``count`` boxes at least GAP px apart (:func:`gtr.data.scenes._place`); with ``relation``, box 1 stands in it
    to box 0 under GenEval's rule at :data:`LAYOUT_MARGIN`."""
    from gtr.eval.geneval.rules import Detection, relative_position

    def related(boxes) -> bool:
        a, b = (Detection(np.array([x, y, x + s, y + s, 1.0]), None) for x, y, s in (boxes[1], boxes[0]))
        return relation in relative_position(a, b, LAYOUT_MARGIN)
    return _place(rng, count, related if relation else None)


def layout(prompt: Prompt, rng: np.random.Generator) -> Layout:
    """A scene that satisfies ``prompt``, the rest drawn from ``rng``."""
    colours = list(COLOURS)
    shared = colours[int(rng.integers(len(colours)))]  # a counting scene's one colour
    picked = [item.colour or (shared if prompt.task == "counting" else colours[int(rng.integers(len(colours)))])
              for item in prompt.items]
    background = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    boxes = _boxes(rng, len(prompt.items), prompt.relation)
    return Layout(background, tuple((item.shape, colour, box) for item, colour, box in zip(prompt.items, picked, boxes)))


def render_layout(scene: Layout) -> np.ndarray:
    """uint8 [32, 32, 3] image of a layout (hard edges, exact palette colours)."""
    image = np.empty((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    image[:] = BACKGROUNDS[scene.background]
    for shape, colour, (x0, y0, side) in scene.objects:
        box = image[y0:y0 + side, x0:x0 + side]
        box[shape_mask(shape, side, side)] = COLOURS[colour]
    return image


def pair(index: int, seed: int = SPLIT_SEEDS["train"]) -> tuple[Prompt, Layout]:
    """Training pair ``index`` of stream ``seed``: a task uniformly, one of its training prompts uniformly, then a
    scene for it."""
    rng = _rng(seed, index)
    task = TASKS[int(rng.integers(len(TASKS)))]
    prompts = training_prompts(task)
    prompt = prompts[int(rng.integers(len(prompts)))]
    return prompt, layout(prompt, rng)


def generate_pairs(count: int, seed: int = SPLIT_SEEDS["train"], start: int = 0
                   ) -> tuple[np.ndarray, list[str]]:
    """Images ``start .. start + count`` of stream ``seed`` (uint8 [count, 32, 32, 3]) and their prompts."""
    pairs = [pair(start + i, seed) for i in range(count)]
    images = np.stack([render_layout(s) for _, s in pairs]) if pairs \
        else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    return images, [p.text for p, _ in pairs]


def ground_truth(text: str, index: int, seed: int = SPLIT_SEEDS["test"]) -> np.ndarray:
    """A ground-truth rendering of prompt ``text`` (image ``index`` of stream ``seed``): what a perfect model
    draws, for validating the scorer."""
    return render_layout(layout(parse_prompt(text), _rng(seed, index)))


__all__ = ["COUNTS", "HELD_OUT_FRACTION", "Item", "Layout", "Prompt", "RELATIONS", "TASKS", "TASK_SIZES",
           "all_prompts", "evaluation_metadata", "evaluation_prompts", "generate_pairs", "ground_truth", "held_out",
           "layout", "metadata_text", "pair", "parse_prompt", "render_layout", "training_prompts", "vocabulary"]
