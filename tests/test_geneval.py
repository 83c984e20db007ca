"""GenEval: prompts and layout, the detector's mmdet pre/post-processing, the CLIP colour classifier, resumable
scoring, and scripts/geneval.py end to end on tiny random models saved in the real (transformers) layouts."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, run_env
from gtr.errors import GtRError
from gtr.eval.geneval.colors import TEMPLATES, ColorClassifier
from gtr.eval.geneval.detector import Detector, mask_to_box
from gtr.eval.geneval.prompts import image_path, read_metadata, resolve_metadata, write_metadata
from gtr.eval.geneval.rules import COLORS, OBJECT_NAMES, Detection

BENCH = OBJECT_NAMES.index("bench")
PROMPTS = [  # one per task, in GenEval's format
    {"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"},
    {"tag": "single_object", "include": [{"class": "cow", "count": 1}], "prompt": "a photo of a cow"},
    {"tag": "two_object", "include": [{"class": "bench", "count": 1}, {"class": "dog", "count": 1}],
     "prompt": "a photo of a bench and a dog"},
    {"tag": "counting", "include": [{"class": "bench", "count": 2}], "exclude": [{"class": "bench", "count": 3}],
     "prompt": "a photo of two benches"},
    {"tag": "colors", "include": [{"class": "bench", "count": 1, "color": "blue"}],
     "prompt": "a photo of a blue bench"},
    {"tag": "position", "include": [{"class": "bench", "count": 1},
                                    {"class": "bench", "count": 1, "position": ["left of", 0]}],
     "prompt": "a photo of a bench left of a bench"},
    {"tag": "color_attr", "include": [{"class": "bench", "count": 1, "color": "red"},
                                      {"class": "cow", "count": 1, "color": "white"}],
     "prompt": "a photo of a red bench and a white cow"},
]


def write_prompts(path, records=PROMPTS):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def tiny_mask2former(folder=None, bench_logit=10.0):
    """A random tiny Mask2Former (Swin backbone, 80 COCO classes) whose classifier says "bench" for every query,
    so random masks still give bench detections above GenEval's thresholds."""
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig
    torch.manual_seed(0)
    backbone = SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=7,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=backbone, num_labels=80, feature_size=32, mask_feature_size=32,
                               hidden_dim=32, encoder_feedforward_dim=64, dim_feedforward=64, encoder_layers=1,
                               decoder_layers=2, num_queries=10, num_attention_heads=2)
    model = Mask2FormerForUniversalSegmentation(config).eval()
    with torch.no_grad():
        model.class_predictor.weight.zero_()
        model.class_predictor.bias.zero_()
        model.class_predictor.bias[BENCH] = bench_logit
    if folder is not None:
        model.save_pretrained(folder)
    return model


def tiny_clip(folder=None):
    """A random tiny CLIP with a word-level tokenizer (BOS/EOS added as CLIP's), in from_pretrained's layout."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast
    words = ["<pad>", "<bos>", "<eos>", "<unk>", "a", "photo", "of", "object", "colored", "-", *COLORS, "bench", "cow"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>", special_tokens=[("<bos>", 1),
                                                                                                  ("<eos>", 2)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<bos>",
                                        eos_token="<eos>", unk_token="<unk>")
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(
        text_config=dict(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, bos_token_id=1, eos_token_id=2,
                         pad_token_id=0),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=224, patch_size=32), projection_dim=16)).eval()
    if folder is not None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return model, tokenizer


# ----------------------------------------------------------------------------------------------------------------
# prompts and layout

def test_metadata_is_checked_and_written_untouched(tmp_path):
    records = read_metadata(write_prompts(tmp_path / "meta.jsonl"))
    assert records == PROMPTS
    write_metadata(tmp_path / "out", 3, records[5])
    text = (tmp_path / "out" / "00003" / "metadata.jsonl").read_text()
    assert text == json.dumps(PROMPTS[5]) + "\n" and json.loads(text) == PROMPTS[5]  # one raw object, no lists
    assert image_path(tmp_path / "out", 3, 1) == tmp_path / "out" / "00003" / "samples" / "0001.png"
    bad = {"unicorn": {**PROMPTS[0], "include": [{"class": "unicorn", "count": 1}]},
           "colour": {**PROMPTS[4], "include": [{"class": "bench", "count": 1, "color": "teal"}]},
           "position": {**PROMPTS[5], "include": [{"class": "bench", "count": 1, "position": ["left of", 0]}]}}
    for word, record in bad.items():
        with pytest.raises(GtRError, match=r"meta.jsonl:2: .*" + {"unicorn": "unknown class", "colour": "colour",
                                                                  "position": "position"}[word]):
            read_metadata(write_prompts(tmp_path / "meta.jsonl", [PROMPTS[0], record]))
    (tmp_path / "meta.jsonl").write_text('{"tag": "x"\n')
    with pytest.raises(GtRError, match="not JSON"):
        read_metadata(tmp_path / "meta.jsonl")
    wrong_types = {"prompt": {**PROMPTS[0], "prompt": 3}, "tag": {**PROMPTS[0], "tag": ["single_object"]},
                   "include": {**PROMPTS[0], "include": "dog"}, "clause": {**PROMPTS[0], "include": ["dog"]},
                   "count": {**PROMPTS[0], "include": [{"class": "dog", "count": True}]},
                   "class": {**PROMPTS[0], "include": [{"class": ["dog"], "count": 1}]},
                   "color": {**PROMPTS[0], "include": [{"class": "dog", "count": 1, "color": 1}]}}
    for field, record in wrong_types.items():
        with pytest.raises(GtRError, match=r"meta.jsonl:2: .*" + {"prompt": "prompt must be", "tag": "unknown tag",
                                                                  "include": "include", "clause": "include",
                                                                  "count": "count", "class": "unknown class",
                                                                  "color": "unknown colour"}[field]):
            read_metadata(write_prompts(tmp_path / "meta.jsonl", [PROMPTS[0], record]))
    with pytest.raises(GtRError, match=r"meta.jsonl:2: unknown tag 'spelling': GenEval's tasks are single_object"):
        read_metadata(write_prompts(tmp_path / "meta.jsonl", [PROMPTS[0], {**PROMPTS[0], "tag": "spelling"}]))
    (tmp_path / "meta.jsonl").write_bytes(b'{"tag": "single_object", "prompt": "a photo of a caf\xe9"}\n')
    with pytest.raises(GtRError, match="is not UTF-8 text"):
        read_metadata(tmp_path / "meta.jsonl")


def test_missing_prompts_file_is_one_line(tmp_path):
    with pytest.raises(GtRError, match="geneval.prompts=") as err:
        resolve_metadata(None, tmp_path, download=True)  # GTR_OFFLINE=1 in tests
    assert "\n" not in str(err.value) and "evaluation_metadata.jsonl" in str(err.value)
    with pytest.raises(GtRError, match="does not exist"):
        resolve_metadata(tmp_path / "none.jsonl", tmp_path)


def test_downloaded_prompts_are_checked_against_the_official_file(tmp_path, monkeypatch):
    import hashlib
    from gtr import weights
    from gtr.eval.geneval.prompts import METADATA
    served = {"bytes": b"not the official file"}
    monkeypatch.delenv("GTR_OFFLINE")

    def fake_download(url, dest, desc="", check=None):  # the real one's contract: verified before it appears
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.part")
        part.write_bytes(served["bytes"])
        if check is not None and not check(part):
            part.unlink()
            raise weights.ChecksumError(str(dest))
        part.replace(dest)
    monkeypatch.setattr(weights, "download_file", fake_download)
    with pytest.raises(GtRError, match="checksum differs"):
        resolve_metadata(None, tmp_path)
    assert not (tmp_path / METADATA.relpath).exists()  # the wrong file is not left behind
    served["bytes"] = write_prompts(tmp_path / "meta.jsonl").read_bytes()
    monkeypatch.setattr("gtr.eval.geneval.prompts.METADATA", weights.WeightFile(
        "GenEval prompts", METADATA.relpath, METADATA.url, 0, "geneval.prompts", kind="file",
        sha256=hashlib.sha256(served["bytes"]).hexdigest()))
    assert read_metadata(resolve_metadata(None, tmp_path)) == PROMPTS


# ----------------------------------------------------------------------------------------------------------------
# detector: mmdet's test pipeline and instance post-processing

def test_preprocess_resizes_as_mmdet_and_pads_to_32():
    detector = Detector(tiny_mask2former(), "hf")
    x, size = detector.preprocess(Image.new("RGB", (512, 512), (124, 116, 104)))
    assert x.shape == (1, 3, 800, 800) and size == (800, 800)
    assert torch.allclose(x[0, :, 400, 400], torch.tensor([(124 - 123.675) / 58.395, (116 - 116.28) / 57.12,
                                                           (104 - 103.53) / 57.375]), atol=1e-6)
    x, size = detector.preprocess(Image.new("RGB", (500, 300)))  # PIL size is (w, h)
    assert size == (800, 1333) and x.shape == (1, 3, 800, 1344)  # scale min(1333/500, 800/300)
    assert (x[0, :, :, 1333:] == 0).all()  # zero padding after normalisation


def test_resize_is_opencvs_integer_bilinear():
    """cv2.resize(img, (6, 5), interpolation=cv2.INTER_LINEAR) of this image, as OpenCV 5.0 (x86) returns it; a
    float bilinear resize rounded differs in 4 of these 30 values."""
    from gtr.eval.geneval.detector import opencv_linear_resize
    image = torch.tensor([[0, 255, 37, 200], [90, 12, 250, 3], [255, 128, 64, 1]], dtype=torch.uint8)
    opencv = [[0, 127, 219, 73, 118, 200], [36, 97, 152, 128, 122, 121], [90, 51, 52, 210, 127, 3],
              [189, 135, 91, 129, 70, 2], [255, 191, 117, 74, 32, 1]]
    out = opencv_linear_resize(image[..., None].expand(-1, -1, 3), (5, 6))
    assert out.dtype == torch.uint8 and out.shape == (5, 6, 3) and (out == out[..., :1]).all()
    assert out[..., 0].tolist() == opencv


def test_postprocess_topk_over_query_class_pairs_scores_and_boxes():
    detector = Detector(tiny_mask2former(), "hf", max_per_image=3)
    logits = torch.full((3, 81), -20.0)
    logits[0, 5], logits[0, 7] = 5.0, 5.0  # query 0: two classes at 0.5 each
    logits[1, 7] = 10.0  # query 1: class 7 at ~1.0
    logits[2, 9], logits[2, 80] = 1.0, 3.0  # query 2: class 9 at 0.12, the 4th best pair -> cut (max_per_image=3)
    masks = torch.full((3, 8, 8), -4.0)
    masks[0, 2:5, 1:4] = 2.0
    masks[1, 6:8, 0:8] = 0.5
    per_class = detector.postprocess(logits, masks)
    assert len(per_class) == 80 and all(len(b) == 0 for i, (b, m) in enumerate(per_class) if i not in (5, 7))
    boxes5, masks5 = per_class[5]
    assert boxes5.shape == (1, 5) and masks5.shape == (1, 8, 8) and masks5[0].sum() == 9
    p = torch.softmax(logits[0], 0)[5].item()
    assert boxes5[0, :4].tolist() == [1, 2, 4, 5]  # x_min, y_min, x_max + 1, y_max + 1
    assert boxes5[0, 4] == pytest.approx(p * torch.sigmoid(torch.tensor(2.0)).item(), rel=1e-5)
    boxes7 = per_class[7][0]
    assert sorted(boxes7[:, :4].tolist()) == [[0, 6, 8, 8], [1, 2, 4, 5]]  # the same query 0 gives class 7 too
    assert mask_to_box(torch.zeros(1, 4, 4, dtype=torch.bool)).tolist() == [[0, 0, 0, 0]]
    with pytest.raises(GtRError, match="unknown detector"):
        Detector(tiny_mask2former(), "yolo")


# ----------------------------------------------------------------------------------------------------------------
# colour classifier

def test_crops_composite_the_mask_over_grey_and_round_the_box():
    model, tokenizer = tiny_clip()
    colors = ColorClassifier(model, tokenizer)
    image = Image.new("RGB", (16, 16), (200, 10, 10))
    mask = np.zeros((16, 16), dtype=bool)
    mask[4:8, 4:8] = True
    crop, = colors.crops(image, [Detection(np.array([2.4, 2.6, 9.5, 8.5, 0.9]), mask)])
    assert crop.size == (8, 5)  # PIL rounds (2.4, 2.6, 9.5, 8.5) to (2, 3, 10, 8)
    pixels = np.asarray(crop)
    assert tuple(pixels[0, 0]) == (153, 153, 153) and tuple(pixels[2, 3]) == (200, 10, 10)


def test_color_classifier_is_the_template_mean_zero_shot_argmax():
    model, tokenizer = tiny_clip()
    colors = ColorClassifier(model, tokenizer)
    weights = colors.classifier("bench")
    assert weights.shape == (16, 10) and torch.allclose(weights.norm(dim=0), torch.ones(10))
    with torch.no_grad():  # colour 3 by hand: mean of the normalised template embeddings, renormalised
        batch = tokenizer([t.format(c=COLORS[3], cls="bench") for t in TEMPLATES], padding=True, return_tensors="pt")
        emb = model.get_text_features(**batch).pooler_output
        emb = torch.nn.functional.normalize(emb, dim=-1).mean(0)
    assert torch.allclose(weights[:, 3], emb / emb.norm(), atol=1e-6)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    objects = [Detection(np.array([0, 0, 32, 32, 0.9]), None), Detection(np.array([10, 20, 60, 64, 0.9]), None)]
    with torch.no_grad():
        pixels = torch.stack([colors.transform(c) for c in colors.crops(image, objects)])
        feats = torch.nn.functional.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
    assert colors(image, objects, "bench") == [COLORS[i] for i in (feats @ weights).argmax(1).tolist()]


# ----------------------------------------------------------------------------------------------------------------
# scoring and the script

def test_scoring_resumes_after_a_kill(tmp_path):
    from gtr.eval.geneval.score import score_folder
    out = tmp_path / "run"
    rng = np.random.default_rng(0)
    for index, record in enumerate(PROMPTS[:3]):
        write_metadata(out, index, record)
        for k in range(2):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(image_path(out, index, k))
    detector = Detector(tiny_mask2former(), "hf")
    colors = ColorClassifier(*tiny_clip())
    fresh = score_folder(out, detector, colors, out=tmp_path / "fresh.jsonl", progress=False)
    assert [r["filename"] for r in fresh] == [str(image_path(out, i, k)) for i in range(3) for k in range(2)]
    assert fresh[0]["correct"] and not fresh[2]["correct"]  # a bench is seen everywhere, a cow nowhere
    assert fresh[2]["reason"] == "expected cow>=1, found 0" and json.loads(fresh[2]["metadata"]) == PROMPTS[1]
    # A killed run: two rows scored, the third cut mid-line. The restart scores only what is missing.
    from gtr.eval.geneval.rules import Thresholds
    from gtr.eval.geneval.score import partial_path
    partial = partial_path(tmp_path / "resumed.jsonl", detector, colors, Thresholds())
    assert partial != partial_path(tmp_path / "resumed.jsonl", detector, colors, Thresholds(score=0.5))
    partial.write_text("".join(json.dumps(r) + "\n" for r in fresh[:2]) + json.dumps(fresh[2])[:30])
    calls = []
    counting = Detector(tiny_mask2former(), "hf")
    counting.model.register_forward_hook(lambda *a: calls.append(1))
    resumed = score_folder(out, counting, colors, out=tmp_path / "resumed.jsonl", progress=False)
    assert resumed == fresh and len(calls) == 4 and not partial.exists()
    with pytest.raises(GtRError, match="no GenEval prompt folders"):
        score_folder(tmp_path / "empty", detector, colors)
    # A missing image is refused (it would lower its prompt's denominator), before anything is scored.
    image_path(out, 1, 1).unlink()
    with pytest.raises(GtRError, match=r"00001/samples holds 1 images, not 2: finish the generation"):
        score_folder(out, counting, colors, out=tmp_path / "short.jsonl", progress=False, images_per_prompt=2)
    assert len(calls) == 4


@pytest.mark.parametrize("options, message", [
    (dict(score=1.5), "thresholds.score=1.5: a threshold is a number in"),
    (dict(counting_score=-0.1), "counting_score=-0.1"),
    (dict(position=float("nan")), "position=nan"),
    (dict(max_objects=0), "max_objects=0: give an integer >= 1"),
])
def test_thresholds_are_refused_outside_their_range(options, message):
    from gtr.eval.geneval.rules import Thresholds
    with pytest.raises(GtRError, match=message):
        Thresholds(**options)


def run_script(tmp_path, out, *overrides, env=None, launcher=(sys.executable,)):
    cmd = [*launcher, str(REPO / "scripts" / "geneval.py"), "model=lightgen_tiny", "sampler=gtr",
           "sampler.t_max=2", "sampler.t_min=1", "sampler.t_rec=1", "sampler.t_detail=2", "n_samples=2",
           "batch_size=2", "device=cpu", "progress=false", "weights.download=false",
           f"geneval.prompts={tmp_path / 'meta.jsonl'}", "geneval.detector=hf",
           f"geneval.detector_path={tmp_path / 'm2f'}", f"geneval.clip_path={tmp_path / 'clip'}",
           f"text_cache={tmp_path / 'cache'}", f"output_dir={out}", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, env=env or run_env(), timeout=900)


def test_two_processes_write_the_same_images_as_one(tmp_path):
    """torchrun (gloo, CPU) with 2 ranks: the same PNG bytes as one process, rank-independent T5 features."""
    write_prompts(tmp_path / "meta.jsonl", PROMPTS[:3])
    one, two = tmp_path / "one", tmp_path / "two"
    # torchrun runs each rank with one CPU thread; so does the single process, since CPU matmuls round by thread count.
    proc = run_script(tmp_path, one, "score=false", "batch_size=1", env={**run_env(), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    proc = run_script(tmp_path, two, "score=false", "batch_size=1", launcher=cmd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    images = sorted(p.relative_to(one) for p in one.rglob("*.png"))
    assert len(images) == 6 and images == sorted(p.relative_to(two) for p in two.rglob("*.png"))
    assert all((one / p).read_bytes() == (two / p).read_bytes() for p in images)
    assert json.loads((two / "results.json").read_text())["world_size"] == 2


def test_geneval_script_end_to_end_and_resume(tmp_path):
    write_prompts(tmp_path / "meta.jsonl")
    tiny_mask2former(tmp_path / "m2f")
    tiny_clip(tmp_path / "clip")
    out = tmp_path / "run"
    proc = run_script(tmp_path, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir() if p.name.isdigit()) == [f"{i:05d}" for i in range(7)]
    for index, record in enumerate(PROMPTS):
        assert (out / f"{index:05d}" / "metadata.jsonl").read_text() == json.dumps(record) + "\n"
        assert [Image.open(image_path(out, index, k)).size for k in range(2)] == [(512, 512)] * 2
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 14 and set(rows[0]) == {"filename", "tag", "prompt", "correct", "reason", "metadata",
                                                "details"}
    record = json.loads((out / "results.json").read_text())
    assert record["evaluator"] == "GenEval (HF detector)" and record["sampler_config"] == "gtr"
    assert record["sampler"]["num_stages"] == 4 and record["num_images"] == 14
    cells = record["geneval"]
    assert list(cells) == ["single_object", "two_object", "colors", "counting", "position", "color_attr", "overall"]
    assert cells["single_object"] == 0.5  # the bench prompt right on both images, the cow prompt wrong on both
    assert cells["overall"] == pytest.approx(np.mean([v for k, v in cells.items() if k != "overall"]))
    assert "Overall score (avg. over tasks)" in (out / "summary.txt").read_text()
    # Re-running resumes: nothing is generated again and the scores are the same.
    again = run_script(tmp_path, out)
    assert again.returncode == 0, again.stderr[-3000:]
    record2 = json.loads((out / "results.json").read_text())
    assert record2["generated_by_rank0"] == 0 and record2["geneval"] == cells
    # Scoring alone (e.g. images made on a cluster without the scorer's weights) keeps what generated them; the
    # scores and captioned samples go to wandb when asked.
    env = {**run_env(), "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"}
    again = run_script(tmp_path, out, "generate=false", f"geneval.prompts={tmp_path / 'absent.jsonl'}",
                       "wandb.enabled=true", env=env)
    assert list((tmp_path / "wandb").glob("offline-run-*"))
    assert again.returncode == 0, again.stderr[-3000:]
    record3 = json.loads((out / "results.json").read_text())
    assert record3["geneval"] == cells and record3["sampler_config"] == "gtr" and record3["model"] == "lightgen_tiny"
    # Missing weights: one line naming the key.
    proc = run_script(tmp_path, tmp_path / "run2", f"geneval.clip_path={tmp_path / 'no_clip'}")
    assert proc.returncode == 2 and "geneval.clip_path" in proc.stderr and "Traceback" not in proc.stderr


def test_num_prompts_beyond_the_prompt_file_is_refused(tmp_path):
    from omegaconf import OmegaConf

    from gtr.jobs.geneval import load_prompts
    path = write_prompts(tmp_path / "meta.jsonl")
    cfg = OmegaConf.create({"geneval": {"prompts": str(path)}, "weights": {"root": str(tmp_path), "download": False},
                            "num_prompts": len(PROMPTS)})
    assert load_prompts(cfg) == PROMPTS
    cfg.num_prompts = len(PROMPTS) + 1
    with pytest.raises(GtRError, match=f"num_prompts={len(PROMPTS) + 1} but the prompt file holds {len(PROMPTS)}"):
        load_prompts(cfg)
