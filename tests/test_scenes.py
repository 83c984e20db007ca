"""The scenes testbed: the generator (deterministic, valid by construction) and its exact scorer (each failure
kind caught on hand-made scenes)."""
import subprocess
import sys

import numpy as np
import pytest

from gtr.data import scenes as S
from gtr.errors import GtRError
from gtr.eval import scenes as E


def test_generator_is_a_function_of_seed_and_index_in_any_process():
    images, labels = S.generate(50, seed=3, start=100)
    again, _ = S.generate(5, seed=3, start=120)
    assert np.array_equal(images[20:25], again)
    code = ("import hashlib; from gtr.data.scenes import generate; "
            "print(hashlib.sha256(generate(50, seed=3, start=100)[0].tobytes()).hexdigest())")
    digest = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    import hashlib
    assert digest == hashlib.sha256(images.tobytes()).hexdigest()
    assert not np.array_equal(images, S.generate(50, seed=4, start=100)[0])


def test_scenes_follow_the_documented_distribution():
    scenes = [S.scene(i, seed=0) for i in range(600)]
    for s in scenes:
        low, high = S.SIZES[s.count]
        assert len(s.boxes) == s.count and all(low <= side <= high for _, _, side in s.boxes)
        for i, (x0, y0, side) in enumerate(s.boxes):
            assert 1 <= x0 and x0 + side <= S.IMAGE_SIZE - 1 and 1 <= y0 and y0 + side <= S.IMAGE_SIZE - 1
            for bx, by, bs in s.boxes[:i]:  # GAP px between any two boxes
                assert x0 >= bx + bs + S.GAP or bx >= x0 + side + S.GAP or y0 >= by + bs + S.GAP or by >= y0 + side + S.GAP
        assert S.class_of(s.label) == (s.count, s.shape)
    labels = np.array([s.label for s in scenes])
    assert set(labels) == set(range(S.NUM_CLASSES))  # every class, colour and background drawn
    assert {s.colour for s in scenes} == set(S.COLOURS) and {s.background for s in scenes} == set(S.BACKGROUNDS)
    assert S.scene(7, 0, label=5).label == 5 and S.scene(7, 0).caption.endswith("background")


def test_shape_masks_are_exact():
    assert S.shape_mask("square", 3, 4).all()
    circle = S.shape_mask("circle", 8, 8)
    assert circle.sum() == 52 and circle[0].sum() == 4 and circle[3].all()  # a rasterised disc of diameter 8
    triangle = S.shape_mask("triangle", 8, 8)
    assert triangle[-1].all() and triangle[0].sum() == 2 and (np.diff(triangle.sum(1)) >= 0).all()
    with pytest.raises(GtRError, match="unknown shape"):
        S.shape_mask("hexagon", 4, 4)


def test_every_ground_truth_scene_parses_to_its_true_scene():
    images, labels = S.generate(400, seed=1)
    for image, label, index in zip(images, labels, range(400)):
        truth = S.scene(index, seed=1)
        parsed = E.parse(image)
        assert parsed.background == truth.background and len(parsed.objects) == truth.count
        assert {o.colour for o in parsed.objects} == {truth.colour}
        assert all(o.shape == truth.shape and o.iou > 0.99 for o in parsed.objects)
        assert E.check(image, int(label)).valid


def _scene(label=4, index=0):
    s = S.scene(index, seed=0, label=label)
    return s, S.render(s)


def test_each_failure_kind_is_caught():
    s, image = _scene(label=S.label_of(2, "square"))
    assert E.check(image, s.label).failures == ()
    assert "count" in E.check(image, S.label_of(3, "square")).failures
    assert E.check(image, S.label_of(2, "circle")).failures == ("shape",)

    other = next(c for c in S.COLOURS if c != s.colour)
    x0, y0, side = s.boxes[0]
    recoloured = image.copy()
    recoloured[y0:y0 + side, x0:x0 + side] = S.COLOURS[other]
    assert E.check(recoloured, s.label).failures == ("colour",)

    mixed = image.copy()
    mixed[y0:y0 + side // 2, x0:x0 + side] = S.COLOURS[other]
    assert "mixed" in E.check(mixed, s.label).failures

    smear = image.copy()  # a patch matching no palette colour, away from the objects
    free = np.ones(image.shape[:2], bool)
    for bx, by, bs in s.boxes:
        free[max(0, by - 2):by + bs + 2, max(0, bx - 2):bx + bs + 2] = False
    ys, xs = np.nonzero(free[:-4, :-4] & free[4:, 4:] & free[:-4, 4:] & free[4:, :-4])
    smear[ys[0]:ys[0] + 4, xs[0]:xs[0] + 4] = (150, 100, 40)  # brown: no palette colour within UNCLEAR
    assert E.check(smear, s.label).failures == ("stray",)

    speckled = image.copy()  # isolated pixels of another background colour: no region, but a mixed background
    other_bg = next(c for c in S.BACKGROUNDS if c != s.background)
    spots = [(y, x) for y in range(0, 32, 4) for x in range(0, 32, 4) if free[y, x]]
    for y, x in spots:
        speckled[y, x] = S.BACKGROUNDS[other_bg]
    assert E.check(speckled, s.label).failures == ("background",)


def test_score_rates_and_bad_input():
    images, labels = S.generate(30, seed=2)
    result = E.score(images, labels)
    assert result.count == 30 and result.rates()["validity"] == 1.0
    wrong = E.score(images, (labels + 3) % S.NUM_CLASSES)  # +3: the count differs, the shape does not
    assert wrong.rates()["validity"] == 0.0 and wrong.failures["count"].all() and not wrong.failures["shape"].any()
    with pytest.raises(GtRError, match="one class label per image"):
        E.score(images, labels[:3])
    with pytest.raises(GtRError, match="uint8 RGB"):
        E.parse(images[0].astype(np.float32))
    with pytest.raises(GtRError, match="out of range"):
        S.class_of(12)
