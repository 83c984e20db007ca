"""The acceleration baselines (step reduction, Halton, DiSA, LazyMAR): their published numbers and that every config
runs; LazyMAR's caches (tests/test_lazymar.py)."""
import pytest
import torch
from omegaconf import OmegaConf

import gtr
from conftest import REPO
from gtr.errors import GtRError
from gtr.sampling import build_sampler
from gtr.sampling.baselines import arccos_counts, disa_steps, halton_order
from gtr.sampling.rng import PerImageRNG


def test_halton_order_is_a_permutation_with_the_published_start():
    order = halton_order(16, 16)
    assert sorted(order) == list(range(256))
    assert order[:8] == (133, 74, 193, 39, 172, 99, 232, 30)  # Halton-MaskGIT's first points (8,5), (4,10), ...
    for h, w in [(7, 7), (32, 32), (5, 9)]:
        assert sorted(halton_order(h, w)) == list(range(h * w))


def test_halton_order_is_shared_by_all_images_and_generated_first_to_last():
    sampler = build_sampler("halton", num_iter=8)
    order = sampler.order(16, 16, PerImageRNG(0, [0, 1, 2]))
    assert order.shape == (3, 256) and (order == order[0]).all()
    assert order[0, :4].tolist() == [133, 74, 193, 39]


def test_halton_token_count_rules():
    assert arccos_counts(256, 16) == [10, 10, 10, 11, 10, 11, 11, 12, 12, 13, 13, 15, 16, 19, 25, 58]
    assert arccos_counts(256, 8) == [20, 21, 21, 23, 25, 28, 35, 83]
    cosine = [s.num_tokens for s in build_sampler("halton", num_iter=16).plan(16, 16)]
    assert cosine == [s.num_tokens for s in build_sampler("mar", num_iter=16).plan(16, 16)]
    arccos = [s.num_tokens for s in build_sampler("halton", num_iter=16, counts="arccos").plan(16, 16)]
    assert arccos == arccos_counts(256, 16)
    with pytest.raises(GtRError, match="token-count rule"):
        build_sampler("halton", counts="linear")


def test_disa_linear_schedule_matches_its_code():
    # The nominal counts docs/flops.md Sec. 1.3 derives from DiSA's schedule_id rule at 16 and 24 AR steps.
    assert disa_steps(16, 50, 5) == [50, 47, 44, 41, 38, 35, 32, 29, 26, 23, 20, 17, 14, 11, 8, 5]
    assert disa_steps(24, 50, 5) == [50, 48, 46, 44, 42, 40, 38, 36, 34, 32, 30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10,
                                     8, 6, 5]
    plan = build_sampler("disa", num_iter=16).plan(16, 16)
    assert [s.diffusion_steps for s in plan] == disa_steps(16, 50, 5)
    assert [s.num_tokens for s in plan] == [s.num_tokens for s in build_sampler("mar", num_iter=16).plan(16, 16)]


def test_disa_other_strategies():
    assert disa_steps(5, 50, 10, "constant") == [50] * 5
    assert disa_steps(5, 50, 10, "two-stage") == [50, 50, 10, 10, 10]
    cosine = disa_steps(9, 50, 10, "cosine")
    assert cosine[0] == 50 and cosine[-1] == 10 and cosine == sorted(cosine, reverse=True)
    with pytest.raises(GtRError, match="annealing strategy"):
        build_sampler("disa", strategy="exp")
    with pytest.raises(GtRError, match="lower_steps <= upper_steps"):
        build_sampler("disa", upper_steps=5, lower_steps=10)


BASELINE_CONFIGS = ["mar_16", "mar_8", "halton", "halton_8", "disa", "disa_16", "disa_8", "lazymar", "lazymar_8"]


def test_every_baseline_has_a_config():
    assert set(BASELINE_CONFIGS) <= {p.stem for p in (REPO / "configs" / "sampler").glob("*.yaml")}


@pytest.mark.parametrize("config", BASELINE_CONFIGS)
def test_every_baseline_config_samples_on_the_tiny_model(config):
    from gtr.config import compose_config
    from gtr.jobs.common import sampler_from_config
    cfg = compose_config("model=mar_tiny", f"sampler={config}", "sampler.diffusion_steps=3")
    options = OmegaConf.to_container(cfg.sampler, resolve=True)
    if "upper_steps" in options:
        options.update(upper_steps=4, lower_steps=2)
    latents = gtr.sample(gtr.build_mar("mar_tiny"), sampler_from_config(options), [0, 9], seed=0)
    assert latents.shape == (2, 16, 16, 16) and torch.isfinite(latents).all()


def test_completion_keeps_the_given_tokens_and_fills_the_rest():
    from gtr.sampling.completion import CompletionSampler, block_mask, checkerboard_mask
    assert checkerboard_mask(7, 7).sum() == block_mask(7, 7).sum() == 25
    assert block_mask(7, 7)[:25].all() and checkerboard_mask(4, 4).reshape(4, 4)[0].tolist() == [1, 0, 1, 0]
    model = gtr.build_mar("mar_tiny")
    given = torch.randn(2, 256, 16)
    mask = checkerboard_mask(16, 16)
    sampler = CompletionSampler(num_iter=4, diffusion_steps=2, cfg=2.0, given_tokens=given, given=mask)
    assert sum(s.num_tokens for s in sampler.plan(16, 16)) == 128
    out = model.patchify(gtr.sample(model, sampler, [0, 1], seed=0))
    assert torch.equal(out[:, mask], given[:, mask]) and (out[:, ~mask] != 0).all()
    other = model.patchify(gtr.sample(model, sampler, [0, 1], seed=1))
    assert not torch.equal(other[:, ~mask], out[:, ~mask])
    with pytest.raises(GtRError, match="do not fit a batch"):
        gtr.sample(model, sampler, [0, 1, 2], seed=0)
