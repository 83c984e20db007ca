import math

import numpy as np
import pytest
import torch

from gtr.models.diffusion import cosine_betas, p_sample_loop, respaced_schedule, respaced_timesteps
from gtr.models.diffusion_head import DiffusionHead


def test_cosine_betas():
    betas = cosine_betas()
    assert len(betas) == 1000 and betas[-1] == 0.999
    assert betas[0] == pytest.approx(1 - math.cos(0.009 / 1.008 * math.pi / 2) ** 2 / math.cos(0.008 / 1.008 * math.pi / 2) ** 2)


def test_respacing_100_keeps_the_official_timesteps():
    assert respaced_timesteps(100) == [round(k * 999 / 99) for k in range(100)]
    assert respaced_timesteps(100)[:3] == [0, 10, 20] and respaced_timesteps(100)[-2:] == [989, 999]
    assert respaced_timesteps(1000) == list(range(1000))
    assert respaced_timesteps(1) == [0]
    with pytest.raises(ValueError):
        respaced_timesteps(0)


@pytest.mark.parametrize("steps", [1, 2, 5, 20, 50, 100])
def test_schedules_are_cached_and_finite(steps):
    sched = respaced_schedule(steps)
    assert sched is respaced_schedule(steps)
    assert sched.num_steps == steps
    for field in ("log_betas", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2"):
        assert torch.isfinite(getattr(sched, field)).all()
    # with alpha_bar from the spaced steps the product of (1 - beta) telescopes back to the base alpha_bar
    base = np.cumprod(1 - cosine_betas())
    acp = np.cumprod(1 - np.exp(sched.log_betas.double().numpy()))
    assert acp[-1] == pytest.approx(base[respaced_timesteps(steps)[-1]], rel=1e-5)


def test_temperature_scales_only_the_step_noise():
    def model(x, t):  # eps = 0, maximal variance
        return torch.cat([torch.zeros_like(x), torch.ones_like(x)], dim=1)

    x_T = torch.randn(4, 3)
    zero = p_sample_loop(model, x_T, 10, lambda k: torch.zeros(4, 3), temperature=5.0)
    ref = p_sample_loop(model, x_T, 10, lambda k: torch.zeros(4, 3), temperature=1.0)
    assert torch.equal(zero, ref)
    noisy = [p_sample_loop(model, x_T, 10, lambda k: torch.ones(4, 3), temperature=t) for t in (0.5, 1.0)]
    assert not torch.allclose(noisy[0], noisy[1])


def test_final_step_noise_is_drawn_but_unused():
    calls = []

    def noise(k):
        calls.append(k)
        return torch.full((2, 3), 1e6 if k == 4 else 0.0)

    def model(x, t):
        return torch.zeros(2, 6)

    out = p_sample_loop(model, torch.zeros(2, 3), 5, noise)
    assert calls == [0, 1, 2, 3, 4] and out.abs().max() < 1


def test_cfg_guides_eps_only_and_one_is_no_guidance():
    torch.manual_seed(0)
    head = DiffusionHead(token_dim=4, z_channels=8, depth=2, width=16)
    for p in head.parameters():
        torch.nn.init.normal_(p, std=0.3)
    z, z_u, x_T = torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 4)
    noise = torch.randn(5, 3, 4)
    plain = head.sample(z, x_T, 5, lambda k: noise[k])
    guided_1 = head.sample(z, x_T, 5, lambda k: noise[k], z_uncond=z_u, cfg_scale=1.0)
    guided_3 = head.sample(z, x_T, 5, lambda k: noise[k], z_uncond=z_u, cfg_scale=3.0)
    torch.testing.assert_close(guided_1, plain, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(guided_3, plain)
