"""LightGen: the official checkpoint layout, the official sampler's output on the tiny parity case, and loading."""
import argparse
import json

import numpy as np
import pytest
import torch

from conftest import DATA
from gtr.errors import GtRError
from gtr.models import LightGen, build_lightgen, lightgen_config, load_lightgen
from gtr.sampling import build_sampler
from gtr.sampling.executor import make_rng, run_schedule

PARITY = DATA / "tiny_lightgen_parity.pt"


def test_fluid_large_keys_order_and_shapes_match_the_official_checkpoint():
    schema = json.loads((DATA / "lightgen_fluid_large_state_dict_schema.json").read_text())
    with torch.device("meta"):
        model = LightGen(lightgen_config("lightgen"))
    state = model.state_dict()
    assert [(k, list(v.shape)) for k, v in state.items()] == [(k, s) for k, s, _ in schema["state_dict"]]
    assert sum(v.numel() for v in state.values()) == schema["num_params"] == 792_244_352


def test_tiny_parity_with_the_official_sampler():
    """sample_tokens(bsz=2, num_iter=16, cfg=4.0, constant, 512 px) of the official FLUID after seeding 1."""
    case = torch.load(PARITY, weights_only=True)
    model = LightGen(lightgen_config("lightgen_tiny")).eval()
    model.load_state_dict(case["checkpoint"]["model"], strict=True)
    torch.manual_seed(case["case"]["seed"])
    np.random.seed(case["case"]["seed"])
    sampler = build_sampler("mar", num_iter=16, cfg=4.0, cfg_schedule="constant", diffusion_steps=100)
    tokens = run_schedule(model, sampler, case["texts"], make_rng("official", 2, 1, None, "cpu"))
    ours, ref = model.unpatchify(tokens), case["tokens"]
    assert ours.shape == ref.shape == (2, 16, 64, 64)
    assert ((ours - ref).abs().max() / ref.abs().max()).item() < 1e-4


def test_load_from_the_official_layout_and_clear_errors(tmp_path):
    case = torch.load(PARITY, weights_only=True)
    path = tmp_path / "lightgen" / "fluid_dpo" / "checkpoint-last.pth"
    path.parent.mkdir(parents=True)
    torch.save({**case["checkpoint"], "epoch": 3, "args": argparse.Namespace(lr=1e-4)}, path)
    model = load_lightgen("lightgen_tiny", path)
    assert torch.equal(model.fake_latent, case["checkpoint"]["model"]["fake_latent"])
    ema = load_lightgen("lightgen_tiny", path, ema=True)
    assert torch.equal(ema.fake_latent, case["checkpoint"]["model_ema"]["fake_latent"])
    with pytest.raises(GtRError, match="model.checkpoint"):
        load_lightgen("lightgen", root=tmp_path / "nowhere", download=False)
    with pytest.raises(GtRError, match="does not fit LightGen"):
        load_lightgen("lightgen", path)  # the tiny file is not fluid_large
    with pytest.raises(GtRError, match=r"\[B, 128, 48\]"):
        model.condition(torch.zeros(2, 77, 48))


def test_samplers_run_on_the_tiny_model():
    model = build_lightgen("lightgen_tiny")
    texts = torch.randn(2, 128, 48)
    for name, options in (("mar", dict(num_iter=4, diffusion_steps=3, cfg=4.0)),
                          ("halton", dict(num_iter=4, diffusion_steps=3, cfg=4.0)),
                          ("disa", dict(num_iter=4, upper_steps=4, lower_steps=2, cfg=4.0))):
        tokens = run_schedule(model, build_sampler(name, **options), texts, make_rng("per_image", 2, 0, None, "cpu"))
        assert tokens.shape == (2, 1024, 64) and torch.isfinite(tokens).all()
    with pytest.raises(GtRError, match="lazymar runs on MAR models"):
        run_schedule(model, build_sampler("lazymar", num_iter=4, cfg=4.0), texts,
                     make_rng("per_image", 2, 0, None, "cpu"))
