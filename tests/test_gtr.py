import numpy as np
import pytest
import torch

import gtr
from conftest import REPO
from gtr.errors import GtRError
from gtr.sampling import build_sampler
from gtr.sampling.fts import fts_scores, top_fraction_mask
from gtr.sampling.gtr import even_split, linear_diffusion_steps, steps_from_rates
from gtr.sampling.rng import PerImageRNG
from gtr.sampling.stage_partition import stage_partition


def test_partition_mar_grid():
    s1, s2, s3 = stage_partition(16, 16, 3)
    assert (len(s1), len(s2), len(s3)) == (64, 64, 128)
    diag = lambda s: (s // 16 + s % 16)  # noqa: E731  (i + j of raster positions)
    assert (diag(s1) % 4 == 0).all() and (diag(s2) % 4 == 2).all() and (diag(s3) % 2 == 1).all()
    assert sorted(torch.cat([s1, s2, s3]).tolist()) == list(range(256))  # disjoint and complete


@pytest.mark.parametrize("h, w, k", [(16, 16, 3), (32, 32, 4), (7, 7, 3), (5, 9, 2), (16, 16, 1)])
def test_partition_properties(h, w, k):
    stages = stage_partition(h, w, k)
    assert len(stages) == k
    assert sorted(torch.cat(stages).tolist()) == list(range(h * w))
    if k >= 2:  # every reconstruction token's 4-neighbours were generated in earlier stages
        earlier = set(torch.cat(stages[:-1]).tolist())
        for p in stages[-1].tolist():
            i, j = divmod(p, w)
            for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
                if 0 <= a < h and 0 <= b < w:
                    assert a * w + b in earlier


def test_partition_lightgen_grid_sizes():
    assert [len(s) for s in stage_partition(32, 32, 4)] == [128, 128, 256, 512]


def test_too_many_stages_is_a_clear_error():
    with pytest.raises(GtRError, match="K=4 stages do not fit a 2x2 token grid"):
        stage_partition(2, 2, 4)


def test_rates_to_steps():
    assert steps_from_rates([64, 64, 128], [2.67, 10.67, 64]) == [24, 6, 2]  # the paper's MAR rates, literally
    assert steps_from_rates([128, 128, 256, 512], [16, 42.6, 85.3, 256]) == [8, 3, 3, 2]  # LightGen: 16 steps
    for total, parts in [(64, 24), (128, 2), (7, 3), (5, 5)]:
        split = even_split(total, parts)
        assert sum(split) == total and len(split) == parts and max(split) - min(split) <= 1


def test_stage_aware_diffusion_schedule():
    assert linear_diffusion_steps(4, 50, 20) == [50, 40, 30, 20]
    steps = linear_diffusion_steps(30, 50, 20)
    assert steps[0] == 50 and steps[-1] == 20 and all(a >= b for a, b in zip(steps, steps[1:]))
    assert linear_diffusion_steps(1, 50, 20) == [50]
    plan = build_sampler("gtr", steps=[4, 2, 2]).plan(16, 16)
    assert [s.diffusion_steps for s in plan] == [50, 44, 38, 32, 26, 20, 20, 20]
    assert [s.stage for s in plan] == [0, 0, 0, 0, 1, 1, 2, 2]
    assert [s.num_tokens for s in plan] == [16, 16, 16, 16, 32, 32, 64, 64]
    assert [s.max_diffusion_steps for s in plan][-2:] == [50, 50]
    assert build_sampler("gtr", steps=[4, 2, 2], fts=False).plan(16, 16)[-1].max_diffusion_steps is None


def test_fts_scores_match_eq5():
    z = torch.randn(3, 5, 10, generator=torch.Generator().manual_seed(0))
    d, half = 10, 5
    direct = np.zeros((3, 5))
    for idx in np.ndindex(3, 5):
        v = z[idx].double().numpy()
        for n in range(1, half + 1):
            coeff = sum(v[k] * np.exp(-2j * np.pi * n * k / d) for k in range(d))
            direct[idx] += abs(coeff) * (1 + n / half)
    np.testing.assert_allclose(fts_scores(z).numpy(), direct, rtol=1e-5)
    constant = torch.ones(1, 1, 8)  # no variation along the features: only the (excluded) DC term is non-zero
    assert fts_scores(constant).abs().max() < 1e-5


def test_top_beta_selection():
    scores = torch.tensor([[0.1, 5.0, 0.3, 4.0, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0]])
    assert top_fraction_mask(scores, 0.25).nonzero()[:, 1].tolist() == [1, 3, 10]  # int(0.25 * 12) = 3
    assert not top_fraction_mask(scores, 0.05).any()


def test_fts_assigns_detail_steps_to_high_frequency_tokens():
    sampler = build_sampler("gtr", steps=[4, 2, 2], beta=0.1)
    step = sampler.plan(16, 16)[-1]
    z = torch.randn(2, 64, 32) * 0.01
    z[0, 7] = torch.randn(32) * 5  # a token with a rich spectrum
    steps = sampler.assign_diffusion_steps(7, step, z, PerImageRNG(0, [0, 1]))
    assert steps.shape == (2, 64) and set(steps.unique().tolist()) == {20, 50}
    assert (steps == 50).sum(1).tolist() == [6, 6] and steps[0, 7] == 50
    assert sampler.assign_diffusion_steps(0, sampler.plan(16, 16)[0], z[:, :16], None) is None  # generation


def test_gtr_order_follows_the_stages():
    sampler = build_sampler("gtr", steps=[4, 2, 2])
    order = sampler.order(16, 16, PerImageRNG(0, [0, 1]))
    s1, s2, s3 = stage_partition(16, 16, 3)
    for row in order:
        assert set(row[:64].tolist()) == set(s1.tolist()) and set(row[64:128].tolist()) == set(s2.tolist())
        assert set(row[128:].tolist()) == set(s3.tolist())
    assert not torch.equal(order[0], order[1])  # random within a stage, per image


@pytest.mark.parametrize("options", [dict(), dict(steps=[3, 1, 1], fts=False), dict(num_stages=2, steps=[3, 2]),
                                     dict(cfg=1.0, cfg_schedule="constant")])
def test_gtr_samples_on_the_tiny_model(options):
    model = gtr.build_mar("mar_tiny")
    options = dict(dict(steps=[4, 2, 2], t_max=6, t_min=3, t_rec=3, t_detail=6, cfg=2.0), **options)
    latents = gtr.sample(model, build_sampler("gtr", **options), [3, 4], seed=0)
    assert latents.shape == (2, 16, 16, 16) and torch.isfinite(latents).all()


def test_bad_gtr_options():
    with pytest.raises(GtRError, match="give 3 rates or steps"):
        build_sampler("gtr", rates=[2.0, 4.0])
    with pytest.raises(GtRError, match="stage 3 has 128 tokens.*200 AR steps"):
        build_sampler("gtr", steps=[2, 2, 200]).plan(16, 16)
    with pytest.raises(GtRError, match="beta"):
        build_sampler("gtr", beta=1.5)


def test_subsample_order_is_a_spread_permutation():
    from gtr.sampling.gtr import subsample_order
    order = subsample_order(16, 16)
    assert sorted(order.tolist()) == list(range(256))
    first = order[:4].tolist()  # one token from each quadrant first
    assert {(p // 16 >= 8, p % 16 >= 8) for p in first} == {(False, False), (False, True), (True, False), (True, True)}


@pytest.mark.parametrize("token_order", ["random", "raster", "subsample"])
def test_alternative_orders_keep_the_step_counts(token_order):
    sampler = build_sampler("gtr", steps=[4, 2, 2], token_order=token_order)
    order = sampler.order(16, 16, PerImageRNG(0, [0, 1]))
    assert order.shape == (2, 256) and all(sorted(row.tolist()) == list(range(256)) for row in order)
    assert [s.num_tokens for s in sampler.plan(16, 16)] == [16, 16, 16, 16, 32, 32, 64, 64]
    if token_order == "raster":
        assert order[0, :5].tolist() == [0, 1, 2, 3, 4]


def test_constant_diffusion_is_gtr_star():
    plan = build_sampler("gtr", steps=[4, 2, 2], diffusion="constant", constant_steps=50).plan(16, 16)
    assert {s.diffusion_steps for s in plan} == {50} and all(s.max_diffusion_steps is None for s in plan)


def test_fts_selection_variants():
    z = torch.randn(2, 64, 32) * 0.01
    z[:, 7] = torch.randn(32) * 5
    rng = PerImageRNG(0, [0, 1])
    chosen = {}
    for selection in ("high", "low", "random", "all"):
        sampler = build_sampler("gtr", steps=[4, 2, 2], fts_selection=selection)
        chosen[selection] = sampler.assign_diffusion_steps(7, sampler.plan(16, 16)[-1], z, rng) == 50
    assert chosen["high"][:, 7].all() and not chosen["low"][:, 7].any()
    assert (chosen["low"].sum(1) == 6).all() and (chosen["random"].sum(1) == 6).all()
    assert not torch.equal(chosen["random"][0], chosen["random"][1])
    assert chosen["all"].all()
    with pytest.raises(GtRError, match="unknown fts_selection 'mid'"):
        build_sampler("gtr", fts_selection="mid")


SAMPLER_CONFIGS = sorted(p.stem for p in (REPO / "configs" / "sampler").glob("gtr*.yaml"))


def test_every_variant_has_a_config():
    assert {"gtr", "gtr_16", "gtr_8", "gtr_star", "gtr_dagger", "gtr_fts_random", "gtr_fts_low", "gtr_fts_all",
            "gtr_order_raster", "gtr_order_subsample", "gtr_order_random"} <= set(SAMPLER_CONFIGS)


@pytest.mark.parametrize("config", SAMPLER_CONFIGS)
def test_every_variant_config_samples_on_the_tiny_model(config):
    """Each config as scripts/sample.py composes it, with fewer diffusion steps to stay fast."""
    from omegaconf import OmegaConf

    from gtr.config import compose_config
    from gtr.jobs.common import sampler_from_config
    cfg = compose_config("model=mar_tiny", f"sampler={config}", "sampler.t_max=4", "sampler.t_min=2",
                         "sampler.t_rec=2", "sampler.t_detail=4", "sampler.constant_steps=3")
    sampler = sampler_from_config(OmegaConf.to_container(cfg.sampler, resolve=True))
    model = gtr.build_mar("mar_tiny")
    latents = gtr.sample(model, sampler, [0, 9], seed=0)
    assert latents.shape == (2, 16, 16, 16) and torch.isfinite(latents).all()
