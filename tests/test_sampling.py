from pathlib import Path

import numpy as np
import pytest
import torch

import gtr
from gtr.errors import GtRError
from gtr.models import MAR, mar_config
from gtr.sampling import build_sampler, run_schedule
from gtr.sampling.mar import cosine_mask_schedule
from gtr.sampling.rng import OfficialRNG, PerImageRNG

# Tokens per AR step of the official sample_tokens on 256 tokens (docs/mar_official.md Sec. 3.2).
OFFICIAL_STEPS = {
    16: [2, 3, 7, 8, 11, 13, 15, 16, 19, 20, 22, 23, 23, 25, 24, 25],
    32: [1, 1, 1, 2, 3, 4, 3, 5, 5, 6, 6, 7, 7, 8, 8, 8, 10, 9, 10, 10, 11, 11, 11, 12, 11, 12, 12, 13, 12, 12, 13,
         12],
    64: [1] * 13 + [2, 3, 2, 2, 3, 3, 3, 3, 3, 3, 4, 3, 4, 4, 4, 4, 4, 4, 4, 5, 5, 4, 5, 5, 5, 5, 5, 6, 5, 5, 6, 5, 6,
                    6, 6, 5, 6, 6, 6, 6, 6, 6, 7, 6, 6, 6, 6, 7, 6, 6, 6],
    256: [1] * 256,
}


@pytest.mark.parametrize("num_iter", sorted(OFFICIAL_STEPS))
def test_tokens_per_step_match_official(num_iter):
    plan = build_sampler("mar", num_iter=num_iter).plan(16, 16)
    assert [s.num_tokens for s in plan] == OFFICIAL_STEPS[num_iter]


def test_linear_cfg_never_reaches_full_scale():
    plan = build_sampler("mar", num_iter=64, cfg=3.0).plan(16, 16)
    masked = cosine_mask_schedule(256, 64)
    assert masked[-1] == 1
    assert plan[0].cfg == pytest.approx(1 + 2.0 * (256 - masked[0]) / 256, rel=1e-7)
    assert plan[-1].cfg == pytest.approx(1 + 2.0 * 255 / 256, rel=1e-7)
    assert all(a.cfg <= b.cfg for a, b in zip(plan, plan[1:]))
    constant = build_sampler("mar", num_iter=8, cfg=4.0, cfg_schedule="constant").plan(16, 16)
    assert {s.cfg for s in constant} == {4.0}


def _parity_model_and_sampler(parity_case, case):
    """The parity case's tiny MAR (its EMA weights) and the MAR sampler of ``case``'s settings."""
    with torch.device("meta"):
        model = MAR(mar_config("mar_tiny"))
    model.load_state_dict(parity_case["checkpoint"]["model_ema"], strict=True, assign=True)
    sampler = build_sampler("mar", num_iter=case["num_iter"], cfg=case["cfg"], cfg_schedule=case["cfg_schedule"],
                            temperature=case["temperature"])
    return model.eval(), sampler


def test_parity_with_official_code(parity_case):
    """The executor in official RNG mode reproduces the official sample_tokens output (relative error < 1e-4)."""
    case = parity_case["case"]
    model, sampler = _parity_model_and_sampler(parity_case, case)
    latents = gtr.sample(model, sampler, case["labels"], seed=case["seed"], rng="official")
    ref = parity_case["tokens"]
    assert latents.shape == ref.shape
    assert ((latents - ref).abs().max() / ref.abs().max()).item() < 1e-4
    # and the check can fail: another seed gives other tokens
    other = gtr.sample(model, sampler, case["labels"], seed=case["seed"] + 1, rng="official")
    assert ((other - ref).abs().max() / ref.abs().max()).item() > 1e-2


@pytest.fixture(scope="module")
def tiny():
    model = gtr.build_mar("mar_tiny", seed=0)
    with torch.no_grad():  # official init zeroes the head's output; give it a signal so samples depend on z
        for p in model.diffloss.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


def test_same_image_whatever_the_batch(tiny):
    sampler = build_sampler("mar", num_iter=6, diffusion_steps=10, cfg=2.0)
    labels = [1, 5, 5, 9]
    full = gtr.sample(tiny, sampler, labels, seed=3)
    parts = torch.cat([gtr.sample(tiny, sampler, labels[:1], seed=3, image_ids=[0]),
                       gtr.sample(tiny, sampler, labels[1:], seed=3, image_ids=[1, 2, 3])])
    torch.testing.assert_close(parts, full, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(full[1], full[2])  # same class, different image ids
    assert not torch.allclose(full, gtr.sample(tiny, sampler, labels, seed=4))


def test_official_order_is_consumed_from_its_tail():
    torch.manual_seed(0)
    np.random.seed(5)
    rng = OfficialRNG(2)
    perm = rng.permutation(256)
    np.random.seed(5)
    order = build_sampler("mar").order(16, 16, OfficialRNG(2))
    assert torch.equal(order[:, 0], perm[:, 255]) and torch.equal(order[:, -1], perm[:, 0])
    assert sorted(order[1].tolist()) == list(range(256))


def test_per_image_streams_are_independent_of_batch():
    a = PerImageRNG(7, [0, 1, 2]).permutation(10)
    b = PerImageRNG(7, [2]).permutation(10)
    assert torch.equal(a[2], b[0]) and not torch.equal(a[0], a[1])


def test_every_token_is_generated_once(tiny):
    sampler = build_sampler("mar", num_iter=5, diffusion_steps=3, cfg=1.0)
    tokens = run_schedule(tiny, sampler, torch.tensor([0, 1]), PerImageRNG(0, [0, 1]))
    assert tokens.shape == (2, 256, 16)
    assert (tokens.abs().sum(-1) > 0).all()


def test_bf16_autocast_runs_close_to_fp32(tiny):
    sampler = build_sampler("mar", num_iter=4, diffusion_steps=5, cfg=3.0)
    ref = gtr.sample(tiny, sampler, [2], seed=0)
    low = gtr.sample(tiny, sampler, [2], seed=0, precision="bf16")
    assert low.dtype == torch.float32 and torch.isfinite(low).all()
    assert ((low - ref).abs().max() / ref.abs().max()).item() < 0.2


def test_bad_sampler_input(tiny):
    with pytest.raises(GtRError, match="num_iter=257 does not fit a 16x16 token grid"):
        gtr.sample(tiny, build_sampler("mar", num_iter=257), [0])
    with pytest.raises(GtRError, match="num_iter=0"):
        build_sampler("mar", num_iter=0).plan(16, 16)
    with pytest.raises(GtRError, match="unknown sampler 'gtrr'"):
        build_sampler("gtrr")
    with pytest.raises(GtRError, match="has no option.*steps"):
        build_sampler("mar", steps=3)
    with pytest.raises(GtRError, match="cfg_schedule"):
        build_sampler("mar", cfg_schedule="cosine")
    with pytest.raises(GtRError, match="unknown precision"):
        gtr.sample(tiny, build_sampler("mar", num_iter=2), [0], precision="fp8")
    with pytest.raises(GtRError, match="unknown rng mode"):
        gtr.sample(tiny, build_sampler("mar", num_iter=2), [0], rng="global")
    with pytest.raises(GtRError, match="class label 11"):
        gtr.sample(tiny, build_sampler("mar", num_iter=2), [11])


def test_unconditional_parity_with_official_code(parity_case):
    """``labels=None`` is the official ``sample_tokens(labels=None)``: every image on the null class (CFG's two
    halves then agree), official RNG, to float tolerance; and it is not the labelled run."""
    uncond = torch.load(Path(__file__).parent / "data" / "tiny_mar_parity_uncond.pt", weights_only=True)
    case = uncond["case"]
    model, sampler = _parity_model_and_sampler(parity_case, case)
    latents = gtr.sample(model, sampler, None, num_images=case["bsz"], seed=case["seed"], rng="official")
    ref = uncond["tokens"]
    assert ((latents - ref).abs().max() / ref.abs().max()).item() < 1e-4
    labelled = gtr.sample(model, sampler, [3, 7], seed=case["seed"], rng="official")
    assert ((labelled - ref).abs().max() / ref.abs().max()).item() > 1e-2
    with pytest.raises(GtRError, match="num_images"):
        gtr.sample(model, sampler, None, seed=0)
