"""The text-to-image scenes testbed: prompts in GenEval's format (held-out ones never trained on), the exact
detector under GenEval's rules (ground truth scores 1, each failure caught), the word-level text encoder, and
LightGen trained a few steps, sampled from a prompt and scored by scripts/geneval.py's job."""
import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from gtr.data import scene_prompts as P
from gtr.data.scenes import BACKGROUNDS, COLOURS, SHAPES
from gtr.errors import GtRError
from gtr.eval.geneval.prompts import read_metadata
from gtr.eval.geneval.rules import evaluate, select_objects
from gtr.eval.geneval.scenes import MIXED, SceneColors, SceneDetector


def judge(image, record) -> tuple[bool, str]:
    """GenEval's verdict on one image under the exact detector."""
    detector, colors = SceneDetector(), SceneColors()
    objects = select_objects(detector(image), detector.classnames, record["tag"])
    return evaluate(objects, record, lambda found, name: colors(image, found, name))


def test_pairs_are_a_function_of_seed_and_index_in_any_process():
    images, prompts = P.generate_pairs(40, seed=5, start=10)
    again, prompts2 = P.generate_pairs(4, seed=5, start=20)
    assert np.array_equal(images[10:14], again) and prompts[10:14] == prompts2
    code = ("import hashlib; from gtr.data.scene_prompts import generate_pairs; "
            "print(hashlib.sha256(generate_pairs(40, seed=5, start=10)[0].tobytes()).hexdigest())")
    digest = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert digest == hashlib.sha256(images.tobytes()).hexdigest()


def test_evaluation_set_is_genevals_format_and_size_and_held_out():
    records = P.evaluation_metadata()
    assert len(records) == 553 and [r["tag"] for r in records] == [t for t in P.TASKS for _ in range(P.TASK_SIZES[t])]
    path_records = read_metadata_text(P.metadata_text())
    assert path_records == records
    trained = {p.text for t in P.TASKS for p in P.training_prompts(t)}
    asked = {r["prompt"] for r in records}
    for task in P.HELD_OUT_TASKS:  # never trained on, every one of them asked about
        held = {p.text for p in P.evaluation_prompts(task)}
        assert held and not held & trained and held <= asked
        assert len(held) == round(len(P.all_prompts()[task]) * P.HELD_OUT_FRACTION)
    assert not {P.pair(i)[0].text for i in range(3000)} & P.held_out()
    counts = [sum(r["prompt"] == p.text for r in records) for p in P.evaluation_prompts("color_attr")]
    assert max(counts) - min(counts) <= 1  # each prompt asked about equally often
    # GenEval's wording and clause layout, e.g. the position target first
    position = next(r for r in records if r["tag"] == "position")
    subject = position["prompt"][len("a photo of a "):].split()[0]
    assert position["include"][1]["position"][1] == 0 and position["include"][1]["class"] == subject
    counting = next(r for r in records if r["tag"] == "counting")
    assert counting["exclude"][0]["count"] == counting["include"][0]["count"] + 1


def read_metadata_text(text):
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "meta.jsonl"
        path.write_text(text)
        return read_metadata(path, SHAPES, tuple(COLOURS))


def test_coco_vocabulary_refuses_scene_prompts_and_back(tmp_path):
    path = tmp_path / "meta.jsonl"
    path.write_text(json.dumps(P.evaluation_metadata()[0]) + "\n")
    with pytest.raises(GtRError, match="unknown class 'triangle'|unknown class 'circle'|unknown class 'square'"):
        read_metadata(path)
    path.write_text(json.dumps({"tag": "single_object", "include": [{"class": "dog", "count": 1}],
                                "prompt": "a photo of a dog"}) + "\n")
    with pytest.raises(GtRError, match="unknown class 'dog' \\(the detector's classes: circle, square, triangle\\)"):
        read_metadata(path, SHAPES, tuple(COLOURS))


def test_ground_truth_scores_one_on_every_task():
    records = P.evaluation_metadata()
    for i, record in enumerate(records[::7]):  # 79 records, every task
        for k in range(2):
            correct, reason = judge(P.ground_truth(record["prompt"], 2 * i + k), record)
            assert correct, (record["prompt"], reason)


def draw(background="white", objects=()):
    return P.render_layout(P.Layout(background, tuple(objects)))


@pytest.mark.parametrize("record, objects, expected", [
    # counting: one too many fails the exclude clause, the right count passes
    (P.parse_prompt("a photo of two circles").metadata(),
     [("circle", "red", (2, 2, 9)), ("circle", "red", (18, 2, 9)), ("circle", "red", (2, 18, 9))], False),
    (P.parse_prompt("a photo of two circles").metadata(), [("circle", "red", (2, 2, 9)), ("circle", "red", (18, 2, 9))],
     True),
    # two_object: a square drawn instead of the triangle
    (P.parse_prompt("a photo of a circle and a triangle").metadata(),
     [("circle", "blue", (2, 2, 10)), ("square", "blue", (18, 18, 10))], False),
    # colour: the wrong colour fails
    (P.parse_prompt("a photo of a red square").metadata(), [("square", "green", (8, 8, 12))], False),
    # position: the relation reversed fails
    (P.parse_prompt("a photo of a circle left of a square").metadata(),
     [("circle", "red", (20, 10, 10)), ("square", "red", (2, 10, 10))], False),
    (P.parse_prompt("a photo of a circle left of a square").metadata(),
     [("circle", "red", (2, 10, 10)), ("square", "red", (20, 10, 10))], True),
    # colour attribution: colours swapped between the objects fails
    (P.parse_prompt("a photo of a red circle and a blue triangle").metadata(),
     [("circle", "blue", (2, 2, 10)), ("triangle", "red", (18, 18, 10))], False),
])
def test_each_task_fails_what_it_should(record, objects, expected):
    correct, reason = judge(draw(objects=objects), record)
    assert correct == expected, reason


def test_a_two_coloured_object_is_mixed_and_a_blob_is_not_detected():
    image = draw("black", [("square", "red", (6, 6, 14))])
    image[6:20, 13:20] = COLOURS["blue"]  # half the square blue
    detector, colors = SceneDetector(), SceneColors()
    found = select_objects(detector(image), detector.classnames, "colors")
    assert colors(image, found["square"], "square") == [MIXED]
    assert not judge(image, P.parse_prompt("a photo of a red square").metadata())[0]
    blob = np.full((32, 32, 3), BACKGROUNDS["grey"], np.uint8)
    blob[5:7, 5:25] = COLOURS["red"]  # a thin bar: no template fits
    blob[7:25, 5:7] = COLOURS["red"]
    assert all(len(boxes) == 0 for boxes, _ in detector(blob))


def test_word_t5_tells_word_order_and_refuses_unknown_words(tmp_path):
    from gtr.text import WordT5, WordTextEncoder, load_word_t5
    from gtr.training.jobs import export
    torch.manual_seed(0)
    encoder = WordT5(P.vocabulary(), d_model=32, num_layers=1, num_heads=2, d_ff=64, max_length=16)
    ids = encoder.ids(["a photo of a red circle and a blue square", "a photo of a blue circle and a red square"])
    assert ids.shape == (2, 16) and (ids[:, -1] == 0).all()
    with torch.no_grad():
        a, b = encoder(ids)
    assert not torch.allclose(a, b, atol=1e-3)
    with pytest.raises(GtRError, match="unknown word\\(s\\) 'dog'.*knows a, above"):
        encoder.ids(["a photo of a dog"])
    with pytest.raises(GtRError, match="takes at most 15"):
        encoder.ids(["a " * 16])
    path = export({k: v.clone() for k, v in encoder.state_dict().items()}, tmp_path / "text.safetensors",
                  encoder.metadata())
    loaded = WordTextEncoder(path)
    assert torch.equal(loaded(["a photo of a red circle and a blue square"])[0], a)
    other = export({k: v + 1 for k, v in encoder.state_dict().items()}, tmp_path / "other.safetensors",
                   encoder.metadata())
    assert loaded.key("x") != WordTextEncoder(other).key("x")  # cached features are keyed by the weights
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(GtRError, match="cannot read the text encoder"):
        load_word_t5(tmp_path / "bad.safetensors")


TINY = "{caption_channels:32,width:32,encoder_depth:1,decoder_depth:1,cross_depth:1}"


@pytest.fixture(scope="module")
def tiny_lightgen(tmp_path_factory):
    """lightgen_scenes at a tiny width, trained 2 steps by the lightgen job: (model file, text encoder file)."""
    from gtr.config import compose_config
    from gtr.training.jobs import JOBS
    out = tmp_path_factory.mktemp("lightgen_scenes")
    cfg = compose_config("train=lightgen_scenes", f"out_dir={out}", "progress=false", "train.steps=2",
                         "train.batch_size=8", "train.log_every=1", "train.limit=32", "train.text.d_model=32",
                         f"+train.hparams={TINY}", name="train")
    model_path = JOBS["lightgen"](cfg)
    return model_path, model_path.with_name("scenes_text.safetensors")


def test_lightgen_scenes_trains_samples_a_prompt_and_scores_with_genevals_job(tmp_path, tiny_lightgen):
    """The exported model and text encoder sample a prompt through sample_t2i, and scripts/geneval.py's job scores
    the testbed's prompts with the exact detector."""
    from PIL import Image

    from gtr.config import compose_config
    from gtr.jobs.geneval import run_geneval
    from gtr.jobs.sample_t2i import sample_t2i
    model_path, text_path = tiny_lightgen
    assert text_path.is_file()
    model = ["model=lightgen_scenes", f"model.checkpoint={model_path}", f"model.text_encoder.path={text_path}",
             f"+model.hparams={TINY}", "progress=false",
             f"text_cache={tmp_path / 'cache'}"]
    grid = sample_t2i(compose_config(*model, "prompt=a photo of two circles", "images_per_prompt=2",
                                     f"output_dir={tmp_path / 't2i'}", name="sample_t2i"))
    assert grid.is_file() and Image.open(tmp_path / "t2i" / "images" / "00000.png").size == (32, 32)
    with pytest.raises(GtRError, match="unknown word\\(s\\) 'dogs'"):
        sample_t2i(compose_config(*model, "prompt=a photo of two dogs", f"output_dir={tmp_path / 't2i_bad'}",
                                  name="sample_t2i"))
    record = run_geneval(compose_config(*model, "num_prompts=3", "n_samples=2", "sampler=mar", "sampler.num_iter=4",
                                        f"output_dir={tmp_path / 'geneval'}", name="geneval"))
    assert record["evaluator"] == "GenEval rules, exact scenes detector" and record["num_images"] == 6
    assert set(record["geneval"]) == {"single_object", "overall"} and 0 <= record["geneval"]["overall"] <= 1
    meta = json.loads((tmp_path / "geneval" / "00000" / "metadata.jsonl").read_text())
    assert meta == P.evaluation_metadata()[0]


def _record(rates, n=100, seeds=1):
    """A measured row whose six tasks have the given accuracies over ``n`` images each, split over seeds."""
    per = n // seeds
    return {"per_seed": [{"seed": s, "tasks": {t: [round(r * per), per] for t, r in zip(P.TASKS, rates)}}
                         for s in range(seeds)], "gflops": 1.0}


def test_t2i_study_overall_gate_and_verdicts_on_hand_made_numbers():
    from gtr.study import scenes_t2i as S
    mean, se = S.overall(_record([0.5] * 6, n=100, seeds=2))
    assert mean == pytest.approx(0.5) and se == pytest.approx((6 * 0.25 / 100) ** 0.5 / 6)
    assert S.overall(_record([1.0] * 6))[1] > 0  # a perfect row is not certain
    rows = {"lightgen_32": _record([0.9] * 6, 400), "lightgen_8": _record([0.6] * 6, 400)}
    gate = S.premise({"rows": rows})
    assert gate["passed"] and gate["drop"] == pytest.approx(0.3) and gate["ci"][0] > 0
    assert not S.premise({"rows": {**rows, "lightgen_8": _record([0.85] * 6, 400)}})["passed"]
    assert not S.premise({"rows": {"lightgen_32": rows["lightgen_32"]}})["passed"]
    rows.update(gtr_16=_record([0.9] * 6, 400), lightgen_16=_record([0.6] * 6, 400),
                gtr_12=_record([0.5] * 6, 400), lightgen_12=_record([0.5] * 6, 400))
    decided = {c["claim"]: c["verdict"] for c in S.verdicts({"rows": rows})}
    assert decided == {"GtR-16 keeps the 32-step quality": "holds", "GtR-12 keeps the 32-step quality": "does not hold",
                       "GtR-16 beats Step=16": "holds", "GtR-12 beats Step=12": "does not hold"}
    rows.update(gtr_12=_record([0.5] * 6, 40), lightgen_12=_record([0.475] * 6, 40))  # too few images to tell
    assert {c["claim"]: c["verdict"] for c in S.verdicts({"rows": rows})}["GtR-12 beats Step=12"] == "undecided"
    with pytest.raises(GtRError, match="unknown table"):
        S.rows_of(["table9"])
    assert S.row_overrides(S.ROW["gtr_16"], 3.0) == ["sampler=gtr_lightgen", "sampler.cfg=3.0"]
    assert S.row_overrides(S.ROW["lightgen_cfg2"], 3.0) == ["sampler=lightgen_32", "sampler.cfg=2.0"]


def test_t2i_study_script_measures_the_gate_resumes_and_reports(tmp_path, tiny_lightgen):
    from gtr.study.cli import scenes_t2i
    model_path, text_path = tiny_lightgen
    argv = ["--rows", "lightgen_32", "lightgen_8", "gtr_16", "--num-prompts", "2",
            "--n-samples", "1", "--batch-size", "2", "--checkpoint", str(model_path), "--text-checkpoint",
            str(text_path), "--override", f"+model.hparams={TINY}",
            "--images", str(tmp_path / "images"), "--out", str(tmp_path / "study")]
    scenes_t2i(argv)
    study = json.loads((tmp_path / "study.json").read_text())
    rows = study["current"]["rows"]
    assert set(rows) >= {"lightgen_32", "lightgen_8"} and rows["lightgen_8"]["ar_steps"] == 8
    assert rows["lightgen_32"]["gflops"] > rows["lightgen_8"]["gflops"] > 0
    if not premise_passed(study):
        assert "gtr_16" not in rows  # gated: the tiny model cannot pass the premise
    text = (tmp_path / "study.md").read_text()
    assert "## Premise gate" in text and "LightGen, 8 AR steps" in text
    stamp = (tmp_path / "images" / "lightgen_8" / "seed0" / "results.json").stat().st_mtime_ns
    scenes_t2i(argv)  # resumes: nothing measured again
    assert (tmp_path / "images" / "lightgen_8" / "seed0" / "results.json").stat().st_mtime_ns == stamp


def premise_passed(study) -> bool:
    from gtr.study.scenes_t2i import premise
    return premise(study["current"])["passed"]


def test_t2i_tokenizer_starts_from_scenes_vae(tmp_path):
    """tokenizer_scenes_t2i fine-tunes the shipped scenes_vae (train.init); an init of another architecture is one
    line."""
    from safetensors.torch import load_file

    from gtr.config import compose_config
    from gtr.tokenizers import load_tokenizer
    from gtr.training.jobs import JOBS
    common = ["progress=false", "train.steps=1", "train.batch_size=8", "train.limit=16", "train.lr=1e-9"]
    path = JOBS["tokenizer"](compose_config("train=tokenizer_scenes_t2i", f"out_dir={tmp_path / 'a'}", *common,
                                            name="train"))
    start = load_tokenizer("scenes_vae").vae.state_dict()
    tuned = load_file(str(path))
    assert tuned.keys() == start.keys()
    assert all(torch.allclose(tuned[k], start[k], atol=1e-5) for k in start)
    with pytest.raises(GtRError, match="train.init=fmnist_vae is not a scenes_vae tokenizer"):
        JOBS["tokenizer"](compose_config("train=tokenizer_scenes_t2i", f"out_dir={tmp_path / 'b'}", *common,
                                         "train.init=fmnist_vae", name="train"))
