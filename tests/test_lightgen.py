"""LightGen: the official checkpoint layout, the official sampler's output on the tiny parity case, and loading."""
import argparse
import json

import numpy as np
import pytest
import torch

from conftest import DATA
from gtr.errors import GtRError
from gtr.models import LightGen, build_lightgen, lightgen_config, load_lightgen
from gtr.sampling import NO_CACHE, build_cache, build_sampler
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


@pytest.mark.parametrize("config, ar_steps", [("gtr_lightgen", 16), ("gtr_lightgen_12", 12), ("lightgen_32", 32),
                                              ("lightgen_16", 16), ("lightgen_12", 12), ("lazymar_lightgen_16", 16),
                                              ("lazymar_lightgen_12", 12)])
def test_table2_sampler_configs(config, ar_steps):
    from omegaconf import OmegaConf
    from gtr.config import compose_config
    from gtr.jobs.common import sampler_from_config
    options = OmegaConf.to_container(compose_config("model=lightgen", f"sampler={config}").sampler, resolve=True)
    sampler = sampler_from_config(options)
    plan = sampler.plan(32, 32)
    assert len(plan) == ar_steps and sum(s.num_tokens for s in plan) == 1024
    if config == "gtr_lightgen":
        assert sampler.stage_steps(32, 32)[1] == [8, 3, 3, 2]
        assert [s.diffusion_steps for s in plan[:14]][::13] == [50, 20] and plan[-1].diffusion_steps == 20
    if "lightgen_" in config:  # 50 diffusion steps and constant CFG 4.0: LightGen's defaults, not the config's
        assert (options["cfg"], options["cfg_schedule"]) == (4.0, "constant")
        assert config.startswith("gtr") or options["diffusion_steps"] == 50


def test_gtr_lightgen_is_the_models_own_gtr_setting():
    """On lightgen_scenes (256 tokens) sampler=gtr_lightgen keeps Table 2's (8, 3, 3, 2) AR steps: the rates are the
    model's (a quarter of LightGen's), not LightGen's 1,024-token rates, which would give 5 steps."""
    from gtr.jobs.common import sampler_from_config, sampling_options
    for model, grid in (("lightgen", 32), ("lightgen_scenes", 16)):
        sampler = sampler_from_config(sampling_options(model, "gtr_lightgen")[0])
        assert sampler.stage_steps(grid, grid)[1] == [8, 3, 3, 2], model


def test_sampler_defaults_follow_the_model():
    """On LightGen, sampler=gtr is Table 2's GtR and sampler=mar its 32 x 50-step baseline; MAR keeps its own."""
    from omegaconf import OmegaConf
    from gtr.config import compose_config

    def resolved(*overrides):
        return OmegaConf.to_container(compose_config(*overrides, name="sample_t2i").sampler, resolve=True)
    assert resolved("model=lightgen") == {**resolved("model=lightgen", "sampler=gtr_lightgen"), "name": "gtr"}
    assert resolved("model=lightgen", "sampler=mar") == {**resolved("model=lightgen", "sampler=lightgen_32"),
                                                          "name": "mar"}
    mar_gtr = resolved("model=mar_b", "sampler=gtr")
    assert (mar_gtr["num_stages"], mar_gtr["rates"], mar_gtr["cfg_schedule"]) == (3, [2.67, 10.67, 64], "linear")
    assert resolved("model=mar_b", "sampler=mar")["diffusion_steps"] == 100


def _parity_model():
    case = torch.load(PARITY, weights_only=True)
    model = LightGen(lightgen_config("lightgen_tiny")).eval()
    model.load_state_dict(case["checkpoint"]["model"], strict=True)
    return model, case["texts"]


def test_lazymar_port_all_full_is_lightgens_sampler_and_cached_steps_save_work(monkeypatch):
    from torch.utils.flop_counter import FlopCounterMode
    from gtr.sampling.lazymar import LazyMARRunner
    from gtr.sampling.runner import ModelRunner
    model, texts = _parity_model()
    base = dict(num_iter=12, diffusion_steps=8, cfg=4.0, cfg_schedule="constant")

    def run(sampler, cache=None):
        return run_schedule(model, sampler, texts, make_rng("per_image", 2, 0, None, "cpu"), cache=cache)

    def transformer_flops(runner_cls, sampler, cache=None):
        spent = []
        original = runner_cls.transformer

        def counted(self, *args):
            with FlopCounterMode(display=False) as counter:
                out = original(self, *args)
            spent.append(counter.get_total_flops())
            return out
        monkeypatch.setattr(runner_cls, "transformer", counted)
        tokens = run(sampler, cache)
        monkeypatch.undo()
        return tokens, sum(spent)

    mar, mar_flops = transformer_flops(ModelRunner, build_sampler("mar", **base))
    full = run(build_sampler("mar", **base), build_cache("lazymar", start_step=12, head_refresh_every=1))
    assert torch.equal(full, mar)  # every step full: LightGen's own sampler, bit for bit
    cached = build_cache("lazymar", start_step=2, refresh_every=4, prune_layer=0, keep_ratios=[0.5])
    lazy, lazy_flops = transformer_flops(LazyMARRunner, build_sampler("mar", **base), cached)
    gap = ((lazy - mar).abs().mean() / mar.std()).item()
    assert 0 < gap < 0.25 and lazy_flops < 0.7 * mar_flops, (gap, lazy_flops / mar_flops)


def test_lazymar_port_runs_cross_attention_on_the_kept_positions():
    """Image positions do not interact after the decoder, so the kept rows alone give the same z there."""
    model, texts = _parity_model()
    cond = model.condition(texts)
    out = torch.randn(2, model.seq_len, model.config.width)
    kept = torch.tensor([[3, 70, 1000], [0, 5, 511]])
    with torch.no_grad():
        every = model.forward_text(out, cond)
        z = model.cached_output(out, cond, kept)
        assert torch.equal(model.cached_output(out, cond, None), every)
    rows = kept[..., None].expand(-1, -1, z.shape[-1])
    torch.testing.assert_close(z.gather(1, rows), every.gather(1, rows), rtol=1e-5, atol=1e-5)
    assert (z.abs().sum(-1) > 0).sum() == kept.numel()


@pytest.mark.parametrize("name, options", [
    ("mar", dict(num_iter=6)),
    ("gtr", dict(num_stages=4, steps=[2, 1, 1, 2])),
    ("mar+lazymar", dict(num_iter=8)),
    ("gtr+lazymar", dict(num_stages=4, steps=[3, 2, 1, 2]))])
def test_flops_counter_counts_what_lightgen_runs(monkeypatch, name, options):
    """The counter's transformer FLOPs (text aligner, encoder, decoder, cross-attention) equal what the sampler's
    runner executes, counted on the real run."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    from gtr.eval.flops import FlopsCounter
    model, texts = _parity_model()
    schedule, _, cached = name.partition("+")
    sampler = build_sampler(schedule, cfg=4.0, cfg_schedule="constant", **options)
    cache = build_cache(cached, start_step=2, refresh_every=3, prune_layer=0, keep_ratios=[0.5]) if cached else None
    runner_cls = type((cache or NO_CACHE).runner(model, sampler.plan(model.seq_h, model.seq_w)))
    spent = []
    original = runner_cls.transformer

    def counted(self, *args):
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            out = original(self, *args)
        spent.append(counter.get_total_flops())
        return out
    monkeypatch.setattr(runner_cls, "transformer", counted)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as condition:
        model.condition(texts)
    run_schedule(model, sampler, texts, make_rng("per_image", 2, 0, None, "cpu"), cache=cache)
    flops = FlopsCounter(model.config).sample(sampler, cache=cache)
    assert len(texts) * (flops.encoder + flops.decoder) == sum(spent) + condition.get_total_flops()


def test_gtr_k4_samples_on_the_tiny_model():
    model = build_lightgen("lightgen_tiny")
    sampler = build_sampler("gtr", num_stages=4, rates=[16, 42.6, 85.3, 256], t_max=4, t_min=2, t_rec=2,
                            t_detail=4, cfg=4.0, cfg_schedule="constant")
    tokens = run_schedule(model, sampler, torch.randn(2, 128, 48), make_rng("per_image", 2, 0, None, "cpu"))
    assert tokens.shape == (2, 1024, 64) and torch.isfinite(tokens).all()


def _tiny_t5(folder):
    """A tiny random T5 encoder and a word-level fast tokenizer, saved in the layout from_pretrained reads."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel
    words = ["<pad>", "</s>", "<unk>", "a", "photo", "of", "red", "apple", "two", "dogs"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)
    torch.manual_seed(0)
    T5EncoderModel(T5Config(vocab_size=len(words), d_model=48, d_kv=8, d_ff=64, num_layers=1, num_heads=2)
                   ).save_pretrained(folder)


def test_prompt_to_image_with_tiny_models(tmp_path):
    """Prompt -> T5 (padded to 128, rows unmasked) -> LightGen -> SD3-family VAE, all through the real classes."""
    from gtr.text import T5TextEncoder, cached_features
    from gtr.tokenizers import build_tokenizer, to_uint8
    _tiny_t5(tmp_path / "t5")
    encoder = T5TextEncoder(tmp_path / "t5")
    prompts = ["a photo of a red apple", "two dogs"]
    features = cached_features(encoder, prompts, tmp_path / "cache")
    assert features.shape == (2, 128, 48) and len(list((tmp_path / "cache").glob("*.safetensors"))) == 2
    assert torch.equal(cached_features(encoder, prompts[::-1], tmp_path / "cache"), features.flip(0))  # cache hit
    assert torch.allclose(encoder(prompts), features)
    model = build_lightgen("lightgen_tiny")
    tokens = run_schedule(model, build_sampler("mar", num_iter=2, diffusion_steps=2, cfg=4.0), features,
                          make_rng("per_image", 2, 0, None, "cpu"))
    vae = build_tokenizer("sd3_vae_tiny")
    assert (vae.scale, vae.shift) == (1.5305, 0.0609)
    images = to_uint8(vae.decode(model.unpatchify(tokens).clamp(-3, 3)))
    assert images.shape == (2, 512, 512, 3)


def test_missing_text_encoder_is_one_line(tmp_path):
    from gtr.text import T5TextEncoder
    with pytest.raises(GtRError, match="model.text_encoder.path"):
        T5TextEncoder(tmp_path / "no_t5_here").load()


def test_sample_t2i_script_writes_a_captioned_grid(tmp_path):
    """The script on the tiny LightGen loaded from the official layout under weights.root, tiny VAE, random text."""
    import subprocess
    import sys
    from conftest import REPO
    case = torch.load(PARITY, weights_only=True)
    path = tmp_path / "weights" / "lightgen" / "lightgen_tiny" / "checkpoint-last.pth"
    path.parent.mkdir(parents=True)
    torch.save(case["checkpoint"], path)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "sample_t2i.py"), "model=lightgen_tiny",
                           "model.random_init=false", f"weights.root={tmp_path / 'weights'}", "weights.download=false",
                           "prompt=a photo of a red apple", "images_per_prompt=2", "batch_size=2",
                           "sampler=lightgen_16", "sampler.num_iter=2", "sampler.diffusion_steps=2",
                           f"output_dir={out}", "progress=false"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from PIL import Image
    assert sorted(p.name for p in (out / "images").iterdir()) == ["00000.png", "00001.png"]
    assert Image.open(out / "grid.png").size[1] > 512


def test_sample_t2i_without_weights_is_one_line(tmp_path):
    from gtr.config import compose_config
    from gtr.jobs.sample_t2i import sample_t2i
    cfg = compose_config(f"weights.root={tmp_path}", "weights.download=false", f"output_dir={tmp_path / 'o'}",
                         name="sample_t2i")
    with pytest.raises(GtRError, match="model.checkpoint"):
        sample_t2i(cfg)
    with pytest.raises(GtRError, match="prompt"):
        sample_t2i(compose_config("prompt=", f"output_dir={tmp_path / 'o'}", name="sample_t2i"))


def test_bad_prompt_files_and_class_models_are_one_line(tmp_path):
    from gtr.config import compose_config
    from gtr.jobs.common import load_configured_model
    from gtr.jobs.sample_t2i import read_prompts
    latin1 = tmp_path / "prompts.txt"
    latin1.write_bytes("a caf\xe9 at night\n".encode("latin-1"))
    with pytest.raises(GtRError, match="is not UTF-8 text .* save it as UTF-8"):
        read_prompts(compose_config(f"prompt_file={latin1}", name="sample_t2i"))
    with pytest.raises(GtRError, match="is not a text-to-image model"):
        load_configured_model(compose_config("model=mar_tiny", name="sample_t2i"), torch.device("cpu"), "text")
    with pytest.raises(GtRError, match="is a text-to-image model: run it with gtr-sample-t2i"):
        load_configured_model(compose_config("model=lightgen_tiny"), torch.device("cpu"))
