"""The shipped scenes MAR: it loads from the package with its tokenizer, every row of the scenes study (every paper
sampler config, with its overrides and caches) runs on it unchanged, and scripts/sample.py draws its labelled grid."""
import json
import subprocess
import sys

import pytest
import torch

import gtr
from conftest import REPO
from gtr.config import compose_config
from gtr.jobs.common import (cache_from_config, load_configured_model, load_image_tokenizer, sampler_from_config,
                             sampling_options)
from gtr.study.scenes import MODEL, ROWS

FEW_STEPS = {"diffusion_steps": 2, "t_max": 4, "t_min": 2, "t_rec": 2, "t_detail": 4, "upper_steps": 4,
             "lower_steps": 2, "constant_steps": 2}  # the code path, not the quality
# One row per config and set of overridden options (the code paths; mar at five CFG scales runs one of them).
CONFIGS = sorted({(row.config, tuple(sorted(row.overrides))): (row.config, json.dumps(dict(row.overrides),
                                                                                      sort_keys=True))
                  for row in ROWS}.values())


@pytest.fixture(scope="module")
def model_and_tokenizer():
    cfg = compose_config(f"model={MODEL}")
    cpu = torch.device("cpu")
    return load_configured_model(cfg, cpu), load_image_tokenizer(cfg.model.tokenizer, cfg.weights, cpu), cfg


def test_shipped_pair_has_the_imagenet_token_grid(model_and_tokenizer):
    model, tokenizer, _ = model_and_tokenizer
    assert (model.seq_h, model.seq_w, model.seq_len) == (16, 16, 256)
    latents = tokenizer.encode(torch.zeros(1, 3, 32, 32))
    assert latents.shape == (1, 4, 16, 16) and tokenizer.decode(latents).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("config, overrides", CONFIGS, ids=[f"{c}{o if o != '{}' else ''}" for c, o in CONFIGS])
def test_every_study_row_samples_on_the_shipped_model(model_and_tokenizer, config, overrides):
    model, tokenizer, cfg = model_and_tokenizer
    overrides = json.loads(overrides)
    options, cache = sampling_options(MODEL, config, overrides)
    if not set(overrides) & set(FEW_STEPS):  # a row that sets diffusion steps keeps all of its own
        options.update({k: v for k, v in FEW_STEPS.items() if k in options})
    with torch.no_grad():
        latents = gtr.sample(model, sampler_from_config(options, cfg.diffusion), [0, 11], seed=0,
                             cache=cache_from_config(cache))
        images = tokenizer.decode(latents)
    assert latents.shape == (2, 4, 16, 16) and images.shape == (2, 3, 32, 32) and torch.isfinite(images).all()


def test_sample_script_draws_the_labelled_grid(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "sample.py"), f"model={MODEL}", "images_per_class=1",
                           "sampler=gtr_8", f"output_dir={tmp_path / 'out'}", "progress=false"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "out" / "grid.png").is_file() and len(list((tmp_path / "out" / "images").glob("*.png"))) == 12
