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
        log_betas=f32(np.log(betas)),
        posterior_log_variance_clipped=f32(posterior_log_variance_clipped),
        sqrt_recip_alphas_cumprod=f32(np.sqrt(1.0 / alphas_cumprod)),
        sqrt_recipm1_alphas_cumprod=f32(np.sqrt(1.0 / alphas_cumprod - 1)),
        posterior_mean_coef1=f32(betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod)),
        posterior_mean_coef2=f32((1.0 - alphas_cumprod_prev) * np.sqrt(1.0 - betas) / (1.0 - alphas_cumprod)),
    )


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
