"""The 16x16-token testbed: the shipped tokenizer and MAR load from the package, every paper sampler config of the
study runs on them unchanged, and scripts/sample.py draws its grid."""
import subprocess
import sys

import pytest
import torch

import gtr
from conftest import REPO
from gtr.study.toy import TESTBEDS, sampling_options
from gtr.models.registry import REGISTRY
from gtr.jobs.common import cache_from_config, load_configured_model, load_image_tokenizer, sampler_from_config
from gtr.config import compose_config

BED = TESTBEDS["fmnist16"]
CLIP = REGISTRY[BED.model].config.clip_timestep  # the testbed's diffusion.clip_timestep


@pytest.fixture(scope="module")
def model_and_tokenizer():
    cfg = compose_config("model=mar_fmnist16")
    return load_configured_model(cfg, torch.device("cpu")), load_image_tokenizer(cfg.model.tokenizer, cfg.weights,
                                                                                 torch.device("cpu"))


def test_shipped_pair_has_the_imagenet_token_grid(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    assert (model.seq_h, model.seq_w, model.seq_len) == (16, 16, 256)
    latents = tokenizer.encode(torch.zeros(1, 1, 32, 32))
    assert latents.shape == (1, 4, 16, 16) and tokenizer.decode(latents).shape == (1, 1, 32, 32)


def test_the_paper_configs_run_unchanged_on_the_testbed():
    """The stage partition and step counts of the ImageNet configs apply as they are (64/64/128 stages)."""
    steps = {row.key: len(sampler_from_config(sampling_options(BED, row)[0]).plan(16, 16)) for row in BED.rows}
    assert steps["mar"] == 64 and steps["mar_16"] == 16 and steps["mar_8"] == 8
    assert steps["gtr_16"] == 19 and steps["gtr_8"] == 9 and steps["lazymar"] == 41 and steps["disa"] == 24


@pytest.mark.parametrize("key", [row.key for row in BED.rows])
def test_every_study_row_samples_on_the_shipped_model(model_and_tokenizer, key):
    model, tokenizer = model_and_tokenizer
    row = next(r for r in BED.rows if r.key == key)
    options, cache = sampling_options(BED, row)
    for name in ("diffusion_steps", "t_max", "t_min", "t_rec", "t_detail", "upper_steps", "constant_steps"):
        if name in options:  # few diffusion steps: the code path, not the quality
            options[name] = {"t_max": 4, "t_detail": 4, "upper_steps": 4}.get(name, 2)
    if "lower_steps" in options:
        options["lower_steps"] = 2
    with torch.no_grad():
        latents = gtr.sample(model, sampler_from_config(options, {"clip_timestep": CLIP}), [0, 7], seed=0,
                             cache=cache_from_config(cache))
        images = tokenizer.decode(latents)
    assert latents.shape == (2, 4, 16, 16) and images.shape == (2, 1, 32, 32) and torch.isfinite(images).all()


def test_sample_script_draws_the_testbed_grid(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "sample.py"), "model=mar_fmnist16",
                           "images_per_class=1", "sampler=gtr_8", f"output_dir={tmp_path / 'out'}", "progress=false"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "out" / "grid.png").is_file() and len(list((tmp_path / "out" / "images").glob("*.png"))) == 10
