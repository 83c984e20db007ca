"""The per-token diffusion process of MAR's DiffLoss: a cosine DDPM with 1000 training steps, respaced to any
number of sampling steps, epsilon prediction and learned-range variance (Improved DDPM).

The number of sampling steps is a per-call argument because GtR (stage-aware scheduling, FTS) and DiSA change it
from one AR step to the next; each respaced schedule is computed once and cached.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

NUM_TRAIN_STEPS = 1000


def cosine_betas(num_steps: int = NUM_TRAIN_STEPS, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal's cosine schedule: alpha_bar(t) = cos^2((t + 0.008) / 1.008 * pi / 2), betas capped at 0.999."""

    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta) for i in range(num_steps)]
    return np.array(betas, dtype=np.float64)


def respaced_timesteps(num_steps: int, num_train_steps: int = NUM_TRAIN_STEPS,
                       clip_timestep: int | None = None) -> list[int]:
    """The training timesteps kept when respacing to ``num_steps`` (one section, as MAR's ``"100"`` string).

    The stride is accumulated in floating point and rounded at every step, exactly as the official
    ``space_timesteps`` does; for 100 steps this keeps {0, 10, 20, ..., 989, 999}. ``clip_timestep`` maps every
    kept step through min(t, clip) and merges duplicates, as DiSA's diffusion code does (clip 950 turns 100 steps
    into 96: the paper's effective baseline); None is the official MAR behaviour.
    """
    if not 1 <= num_steps <= num_train_steps:
        raise ValueError(f"diffusion steps must be in [1, {num_train_steps}], got {num_steps}")
    stride = 1.0 if num_steps == 1 else (num_train_steps - 1) / (num_steps - 1)
    kept, position = [], 0.0
    for _ in range(num_steps):
        kept.append(round(position))
        position += stride
    if clip_timestep is not None:
        kept = [min(t, clip_timestep) for t in kept]
    return sorted(set(kept))


@dataclass(frozen=True)
class RespacedSchedule:
    """Coefficients of the respaced process, indexed by the respaced step i = 0..T-1 (i = T-1 is the noisiest).

    Computed in float64 and stored as float32, the precision at which the official code applies them.
    """

    model_timesteps: torch.Tensor  # [T] long: the original timestep the network sees at respaced step i
    sqrt_alphas_cumprod: torch.Tensor  # forward process q(x_t | x_0) (training)
    sqrt_one_minus_alphas_cumprod: torch.Tensor
    log_betas: torch.Tensor  # [T]: upper end of the learned variance range
    posterior_log_variance_clipped: torch.Tensor  # [T]: lower end
    sqrt_recip_alphas_cumprod: torch.Tensor
    sqrt_recipm1_alphas_cumprod: torch.Tensor
    posterior_mean_coef1: torch.Tensor
    posterior_mean_coef2: torch.Tensor

    @property
    def num_steps(self) -> int:
        return len(self.model_timesteps)


@functools.lru_cache(maxsize=None)
def respaced_schedule(num_steps: int, clip_timestep: int | None = None) -> RespacedSchedule:
    base_alphas_cumprod = np.cumprod(1.0 - cosine_betas())
    kept = respaced_timesteps(num_steps, clip_timestep=clip_timestep)
    # Rebuild betas from alpha_bar at the kept steps (SpacedDiffusion).
    betas, last = [], 1.0
    for t in kept:
        betas.append(1 - base_alphas_cumprod[t] / last)
        last = base_alphas_cumprod[t]
    betas = np.array(betas, dtype=np.float64)
    alphas_cumprod = np.cumprod(1.0 - betas)
    alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    # The posterior variance is 0 at the first step; Improved DDPM clips its log with the next value.
    # (A single step has no next value; its variance is never used, as the last step adds no noise.)
    clipped = np.append(posterior_variance[1], posterior_variance[1:]) if len(betas) > 1 else betas
    posterior_log_variance_clipped = np.log(clipped)

    def f32(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).float()

    return RespacedSchedule(
        model_timesteps=torch.tensor(kept, dtype=torch.long),
        sqrt_alphas_cumprod=f32(np.sqrt(alphas_cumprod)),
        sqrt_one_minus_alphas_cumprod=f32(np.sqrt(1.0 - alphas_cumprod)),
        log_betas=f32(np.log(betas)),
        posterior_log_variance_clipped=f32(posterior_log_variance_clipped),
        sqrt_recip_alphas_cumprod=f32(np.sqrt(1.0 / alphas_cumprod)),
        sqrt_recipm1_alphas_cumprod=f32(np.sqrt(1.0 / alphas_cumprod - 1)),
        posterior_mean_coef1=f32(betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod)),
        posterior_mean_coef2=f32((1.0 - alphas_cumprod_prev) * np.sqrt(1.0 - betas) / (1.0 - alphas_cumprod)),
    )


def _normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log p(x) of 8-bit data in [-1, 1] under a Gaussian discretised to 255 bins (the t = 0 decoder term)."""
    def cdf(v: torch.Tensor) -> torch.Tensor:
        return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v**3)))

    centered, inv_std = x - mean, torch.exp(-log_scale)
    cdf_plus, cdf_min = cdf(inv_std * (centered + 1 / 255)), cdf(inv_std * (centered - 1 / 255))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def training_loss(model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x0: torch.Tensor,
                  t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Per-token loss [M] of Improved DDPM with learned-range variance, as MAR's DiffLoss trains it (loss type MSE):
    the eps MSE plus the variational bound in bits, the latter through the variance output only (the mean is
    detached for it). ``model(x_t, t)`` returns [eps, v]; x0 and noise [M, C]; t [M] in [0, 1000)."""
    sched = respaced_schedule(NUM_TRAIN_STEPS)

    def at(coef: torch.Tensor) -> torch.Tensor:
        return coef.to(x0.device)[t][:, None]

    x_t = at(sched.sqrt_alphas_cumprod) * x0 + at(sched.sqrt_one_minus_alphas_cumprod) * noise
    out = model(x_t, t).float()
    channels = x0.shape[-1]
    eps, var_values = out[:, :channels], out[:, channels:]
    mse = ((noise - eps) ** 2).mean(dim=1)

    frac = (var_values + 1) / 2
    log_variance = frac * at(sched.log_betas) + (1 - frac) * at(sched.posterior_log_variance_clipped)
    pred_x0 = at(sched.sqrt_recip_alphas_cumprod) * x_t - at(sched.sqrt_recipm1_alphas_cumprod) * eps.detach()
    model_mean = at(sched.posterior_mean_coef1) * pred_x0 + at(sched.posterior_mean_coef2) * x_t
    true_mean = at(sched.posterior_mean_coef1) * x0 + at(sched.posterior_mean_coef2) * x_t
    kl = _normal_kl(true_mean, at(sched.posterior_log_variance_clipped), model_mean, log_variance)
    nll = -_discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * log_variance)
    vb = torch.where(t[:, None] == 0, nll, kl).mean(dim=1) / math.log(2.0)
    return mse + vb


def p_sample_loop(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x_T: torch.Tensor,
    num_steps: int,
    step_noise: Callable[[int], torch.Tensor],
    temperature: float = 1.0,
    clip_timestep: int | None = None,
) -> torch.Tensor:
    """Ancestral sampling from x_T over the respaced schedule (``num_steps`` nominal steps; fewer evaluations when
    ``clip_timestep`` merges some).

    ``model(x, t)`` returns [eps, v] with t the original (un-respaced) timestep as a 0-dim long tensor.
    ``step_noise(k)`` gives the noise of the k-th denoising iteration (k = 0 for the noisiest step); it is called on
    every iteration, the last included, where the official code also draws noise that is then multiplied by zero.
    Temperature scales the per-step noise only, never x_T (as in MAR).
    """
    sched = respaced_schedule(num_steps, clip_timestep)
    channels = x_T.shape[-1]
    x = x_T
    for k, i in enumerate(reversed(range(sched.num_steps))):
        out = model(x, sched.model_timesteps[i].to(x.device)).float()
        eps, var_values = out[:, :channels], out[:, channels:]
        frac = (var_values + 1) / 2
        log_variance = frac * sched.log_betas[i].item() + (1 - frac) * sched.posterior_log_variance_clipped[i].item()
        pred_x0 = sched.sqrt_recip_alphas_cumprod[i].item() * x - sched.sqrt_recipm1_alphas_cumprod[i].item() * eps
        mean = sched.posterior_mean_coef1[i].item() * pred_x0 + sched.posterior_mean_coef2[i].item() * x
        noise = step_noise(k)
        x = mean + torch.exp(0.5 * log_variance) * noise * temperature if i > 0 else mean
    return x


def step_coefficients(num_steps: int, clip_timestep: int | None = None, temperature: float = 1.0) -> torch.Tensor:
    """[T, 7] float32: per respaced step i, the coefficients :func:`p_sample_loop` applies (log beta, clipped
    posterior log variance, sqrt(1/alpha_bar), sqrt(1/alpha_bar - 1), the two posterior-mean coefficients) and the
    noise scale (the temperature; 0 at i = 0, which adds no noise). As a tensor, one compiled step serves them all."""
    s = respaced_schedule(num_steps, clip_timestep)
    noise_scale = torch.full((s.num_steps,), float(temperature))
    noise_scale[0] = 0.0
    return torch.stack([s.log_betas, s.posterior_log_variance_clipped, s.sqrt_recip_alphas_cumprod,
                        s.sqrt_recipm1_alphas_cumprod, s.posterior_mean_coef1, s.posterior_mean_coef2, noise_scale], 1)


def denoise_update(out: torch.Tensor, x: torch.Tensor, coef: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """One ancestral step of :func:`p_sample_loop` from the model output ``out`` [M, 2C] at x [M, C], with ``coef``
    a row of :func:`step_coefficients` (the same arithmetic in the same order, on tensors)."""
    channels = x.shape[-1]
    eps, var_values = out[:, :channels], out[:, channels:]
    frac = (var_values + 1) / 2
    log_variance = frac * coef[0] + (1 - frac) * coef[1]
    mean = coef[4] * (coef[2] * x - coef[3] * eps) + coef[5] * x
    return mean + torch.exp(0.5 * log_variance) * noise * coef[6]
