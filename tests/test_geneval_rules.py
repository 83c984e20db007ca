"""GenEval's decision rules and summary on synthetic detections written here: one test per task, and the edges at
each threshold (score 0.3, counting 0.9, 16 objects per class, position 0.1 / 0.5)."""
import json

import numpy as np
import pytest

from gtr.errors import GtRError
from gtr.eval.geneval.rules import (OBJECT_NAMES, Detection, Thresholds, evaluate, relative_position,
                                    select_objects)
from gtr.eval.geneval.summary import format_summary, scores, summarize


def det(x0, y0, x1, y1, score=0.95):
    return Detection(np.array([x0, y0, x1, y1, score], dtype=np.float64), None)


def detections(**per_class) -> list:
    """mmdet-style per-class results for every COCO class: (boxes [N, 5], masks None)."""
    out = [(np.zeros((0, 5)), None) for _ in OBJECT_NAMES]
    for name, boxes in per_class.items():
        out[OBJECT_NAMES.index(name.replace("_", " "))] = (np.array([d.box for d in boxes]), None)
    return out


def no_colors(found, name):
    raise AssertionError("colour classifier called for a prompt without colours")


def judge(metadata, colors=no_colors, **per_class):
    objects = select_objects(detections(**per_class), OBJECT_NAMES, metadata["tag"])
    return evaluate(objects, metadata, colors)


def test_vocabulary_is_cocos_80_classes_with_genevals_names():
    assert len(OBJECT_NAMES) == len(set(OBJECT_NAMES)) == 80
    assert OBJECT_NAMES[0] == "person" and OBJECT_NAMES[62] == "tv" and OBJECT_NAMES[79] == "toothbrush"


def test_score_threshold_is_strict_and_objects_are_sorted_and_capped():
    boxes = [det(0, 0, 10, 10, s) for s in (0.3, 0.31, 0.9, 0.5)]
    found = select_objects(detections(cat=boxes), OBJECT_NAMES, "single_object")["cat"]
    assert [o.box[4] for o in found] == [0.9, 0.5, 0.31]  # 0.3 itself does not pass (score > threshold)
    many = [det(i, 0, i + 5, 5, 0.4 + i / 100) for i in range(20)]
    found = select_objects(detections(cat=many), OBJECT_NAMES, "single_object")["cat"]
    assert len(found) == 16 and found[0].box[4] == pytest.approx(0.59)  # the 16 most confident
    assert "cat" not in select_objects(detections(cat=[det(0, 0, 1, 1, 0.2)]), OBJECT_NAMES, "single_object")


def test_counting_prompts_raise_the_threshold_for_every_class():
    boxes = [det(0, 0, 10, 10, 0.89), det(20, 0, 30, 10, 0.91)]
    assert len(select_objects(detections(dog=boxes), OBJECT_NAMES, "counting")["dog"]) == 1
    assert len(select_objects(detections(dog=boxes), OBJECT_NAMES, "two_object")["dog"]) == 2


def test_same_class_nms_only_below_max_overlap_one():
    boxes = [det(0, 0, 10, 10, 0.9), det(1, 1, 10, 10, 0.8), det(50, 50, 60, 60, 0.7)]
    assert len(select_objects(detections(cup=boxes), OBJECT_NAMES, "single_object")["cup"]) == 3
    nms = select_objects(detections(cup=boxes), OBJECT_NAMES, "single_object", Thresholds(max_overlap=0.5))["cup"]
    assert [o.box[4] for o in nms] == [0.9, 0.7]


def test_single_object():
    meta = {"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"}
    assert judge(meta, bench=[det(0, 0, 10, 10)]) == (True, "")
    assert judge(meta, chair=[det(0, 0, 10, 10)]) == (False, "expected bench>=1, found 0")
    assert judge(meta, bench=[det(0, 0, 10, 10, 0.29)])[0] is False


def test_two_object():
    meta = {"tag": "two_object", "include": [{"class": "tv", "count": 1}, {"class": "computer mouse", "count": 1}],
            "prompt": "a photo of a tv and a computer mouse"}
    assert judge(meta, tv=[det(0, 0, 10, 10)], computer_mouse=[det(20, 0, 25, 5)])[0] is True
    correct, reason = judge(meta, tv=[det(0, 0, 10, 10)])
    assert not correct and reason == "expected computer mouse>=1, found 0"


def test_counting_exact_count_and_over_counting():
    meta = {"tag": "counting", "include": [{"class": "clock", "count": 2}], "exclude": [{"class": "clock", "count": 3}],
            "prompt": "a photo of two clocks"}
    two = [det(0, 0, 10, 10, 0.95), det(20, 0, 30, 10, 0.93)]
    assert judge(meta, clock=two)[0] is True
    assert judge(meta, clock=two + [det(40, 0, 50, 10, 0.85)])[0] is True  # below the counting threshold: unseen
    correct, reason = judge(meta, clock=two + [det(40, 0, 50, 10, 0.92)])
    assert not correct and reason == "expected clock<3, found 3"
    correct, reason = judge(meta, clock=two[:1])
    assert not correct and reason == "expected clock>=2, found 1"


def test_colors_are_judged_on_the_most_confident_objects_only():
    meta = {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "blue"}],
            "prompt": "a photo of a blue car"}
    seen = []

    def colors(found, name):
        seen.append((len(found), name))
        return ["blue" if o.box[4] > 0.9 else "red" for o in found]

    assert judge(meta, colors, car=[det(0, 0, 10, 10, 0.95), det(20, 0, 30, 10, 0.5)]) == (True, "")
    assert seen == [(1, "car")]  # count = 1: only the top object is classified
    correct, reason = judge(meta, colors, car=[det(0, 0, 10, 10, 0.6)])
    assert not correct and reason == "expected blue car>=1, found 0 blue; and 1 red"


def test_color_attr_needs_each_object_in_its_colour():
    meta = {"tag": "color_attr", "prompt": "a photo of a purple wine glass and a black apple",
            "include": [{"class": "wine glass", "count": 1, "color": "purple"},
                        {"class": "apple", "count": 1, "color": "black"}]}
    palette = {"wine glass": "purple", "apple": "black"}
    boxes = dict(wine_glass=[det(0, 0, 10, 10)], apple=[det(20, 0, 30, 10)])
    assert judge(meta, lambda found, name: [palette[name]] * len(found), **boxes)[0] is True
    correct, reason = judge(meta, lambda found, name: ["purple"] * len(found), **boxes)
    assert not correct and reason.startswith("expected black apple>=1, found 0 black")


def test_relative_position_by_hand():
    a, b = det(0, 0, 10, 10), det(100, 0, 110, 10)
    assert relative_position(a, b) == {"left of"} and relative_position(b, a) == {"right of"}
    assert relative_position(det(0, 100, 10, 110), det(0, 0, 10, 10)) == {"below"}
    # Diagonal at 45 degrees: dx = dy = 0.707 (minus the size shrink) > 0.5, so both relations hold.
    assert relative_position(det(100, 100, 110, 110), det(0, 0, 10, 10)) == {"right of", "below"}
    # Centres 15 apart, widths 80 + 80: the offset shrinks by 0.1 * 160 = 16 > 15 -> no relation at all.
    assert relative_position(det(0, 0, 80, 10), det(15, 0, 95, 10)) == set()
    # Offset (100, 50): dx = (100 - 2) / 111.8 = 0.877, dy = (50 - 2) / 111.8 = 0.429 <= 0.5 -> right of only.
    assert relative_position(det(100, 50, 110, 60), det(0, 0, 10, 10)) == {"right of"}
    # The 0.1 shrink is the position threshold: 0 keeps dy = 50 / 111.8 = 0.447, still not "below".
    assert relative_position(det(100, 50, 110, 60), det(0, 0, 10, 10), threshold=0.0) == {"right of"}


def test_position_every_found_object_against_every_target():
    meta = {"tag": "position", "prompt": "a photo of a dog right of a teddy bear",
            "include": [{"class": "teddy bear", "count": 1}, {"class": "dog", "count": 1, "position": ["right of", 0]}]}
    bear = [det(0, 0, 10, 10)]
    assert judge(meta, teddy_bear=bear, dog=[det(100, 0, 110, 10)])[0] is True
    correct, reason = judge(meta, teddy_bear=bear, dog=[det(-100, 0, -90, 10)])
    assert not correct and reason == "expected dog right of target, found left of target"
    correct, reason = judge(meta, dog=[det(100, 0, 110, 10)])
    assert not correct and reason == "expected teddy bear>=1, found 0\nno target for dog to be right of"
    # Only the top `count` dogs are placed: a second, less confident dog on the wrong side does not matter.
    assert judge(meta, teddy_bear=bear, dog=[det(100, 0, 110, 10, 0.9), det(-100, 0, -90, 10, 0.5)])[0] is True


def test_summary_overall_is_the_unweighted_mean_of_tasks():
    rows = []
    for tag, results in (("single_object", [1, 1, 1, 1, 1, 1, 1, 1]), ("counting", [1, 0, 0, 0])):
        for i, ok in enumerate(results):
            rows.append({"tag": tag, "correct": bool(ok), "metadata": json.dumps({"tag": tag, "p": i // 4})})
    summary = summarize(rows)
    assert summary["tasks"]["single_object"]["score"] == 1.0 and summary["tasks"]["counting"]["score"] == 0.25
    assert summary["overall"] == pytest.approx(0.625)  # not the image accuracy 9 / 12 = 0.75
    assert summary["correct_images"] == pytest.approx(0.75)
    assert summary["prompts"] == 3 and summary["correct_prompts"] == pytest.approx(1.0)  # any image per prompt
    assert scores(summary) == {"single_object": 1.0, "counting": 0.25, "overall": pytest.approx(0.625)}
    assert "Overall score (avg. over tasks): 0.62500" in format_summary(summary)
    with pytest.raises(GtRError, match="generate first"):
        summarize([])
