import pytest
import torch

from gtr.eval.flops import FlopsCounter, analytic_flops, effective_diffusion_steps
from gtr.models.diffusion import p_sample_loop
from gtr.models.registry import PRESETS
from gtr.sampling import build_sampler

# Paper, Table 1 (TFLOPs per image): the MAR baseline at 64 and 16 AR steps, for comparison only.
PAPER_BASELINE = {("mar_b", 64): 14.49, ("mar_l", 64): 32.75, ("mar_h", 64): 64.52,
                  ("mar_b", 16): 6.22, ("mar_l", 16): 13.42, ("mar_h", 16): 27.11}


@pytest.fixture(scope="module")
def counters():
    return {name: FlopsCounter(PRESETS[name]) for name in ("mar_b", "mar_l", "mar_h", "mar_tiny")}


@pytest.mark.parametrize("sampler", [dict(name="mar", num_iter=64, cfg=3.0), dict(name="mar", num_iter=8),
                                     dict(name="gtr", steps=[15, 2, 2], cfg=3.0),
                                     dict(name="gtr", steps=[7, 1, 1], cfg=3.0, fts=False)])
@pytest.mark.parametrize("clip", [None, 950])
def test_counter_agrees_with_analytic_model(counters, sampler, clip):
    options = dict(sampler)
    schedule = build_sampler(options.pop("name"), **options)
    counted = counters["mar_b"].sample(schedule, clip)
    analytic = analytic_flops(PRESETS["mar_b"], schedule, clip)
    for part in ("encoder", "decoder", "diffusion"):
        assert getattr(counted, part) == pytest.approx(getattr(analytic, part), rel=5e-3)


def test_extension_equals_a_direct_count(counters):
    tiny = counters["mar_tiny"]
    assert tiny.encoder(2, 77) == tiny._count_encoder(2, 77)
    assert tiny.decoder(1, 200) == tiny._count_decoder(1, 200)
    assert tiny.diffusion_step(13) == tiny._count_diffusion_step(13)


@pytest.mark.parametrize("preset, num_iter", sorted(PAPER_BASELINE))
def test_baseline_matches_the_paper_with_clipped_timesteps(counters, preset, num_iter):
    flops = counters[preset].sample(build_sampler("mar", num_iter=num_iter, cfg=3.0), clip_timestep=950)
    assert flops.tflops == pytest.approx(PAPER_BASELINE[preset, num_iter], rel=3e-3)
    unclipped = counters[preset].sample(build_sampler("mar", num_iter=num_iter, cfg=3.0))
    assert unclipped.tflops > PAPER_BASELINE[preset, num_iter] * 1.008  # plain 100 steps do not fit the paper


def test_fts_adds_detail_steps(counters):
    with_fts = counters["mar_h"].sample(build_sampler("gtr", steps=[15, 2, 2], cfg=3.0))
    without = counters["mar_h"].sample(build_sampler("gtr", steps=[15, 2, 2], cfg=3.0, fts=False))
    per_token_step = counters["mar_h"].diffusion_step(2)  # one CFG-doubled token
    extra_tokens = 2 * int(0.1 * 64)  # two reconstruction steps of 64 tokens, int(beta * n) each
    assert with_fts.diffusion - without.diffusion == pytest.approx(extra_tokens * 30 * per_token_step)
    assert with_fts.encoder == without.encoder


def test_clipped_timesteps_are_run_as_fewer_evaluations():
    assert [effective_diffusion_steps(n, 950) for n in (100, 50, 20)] == [96, 48, 20]
    assert effective_diffusion_steps(100) == 100
    calls = []
    p_sample_loop(lambda x, t: torch.zeros(1, 4), torch.zeros(1, 2), 100, lambda k: calls.append(k) or
                  torch.zeros(1, 2), clip_timestep=950)
    assert len(calls) == 96
