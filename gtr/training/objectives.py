"""Training objectives of the three networks the project trains itself: MAR (masked tokens, diffusion loss), the
KL tokenizer (reconstruction + KL) and the Fashion-MNIST classifier used by the domain metrics."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import truncnorm

from gtr.models.mar import MAR


def mask_ratios(count: int, rng: np.random.Generator, minimum: float = 0.7, std: float = 0.25) -> np.ndarray:
    """MAR's masking ratios: a Gaussian centred at 1 with std 0.25, truncated to [minimum, 1]."""
    return truncnorm.rvs((minimum - 1.0) / std, 0.0, loc=1.0, scale=std, size=count, random_state=rng)


def mar_loss(model: MAR, tokens: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator,
             generator: torch.Generator, mask_ratio_min: float = 0.7, label_drop_prob: float = 0.1,
             diffusion_batch_mul: int = 4) -> torch.Tensor:
    """MAR's training loss for one batch of tokens [B, N, C] (MAR paper Sec. 3.3-3.4, official ``forward``).

    One masking ratio per batch (every row masks the same number of tokens, so the encoder can drop them),
    ceil(N * ratio) positions of a fresh random order per image are masked, labels are replaced by the "no class"
    embedding with probability ``label_drop_prob`` (for CFG; a text condition [B, L, D] by the null text), and the diffusion loss is averaged over the masked
    tokens with ``diffusion_batch_mul`` timestep/noise draws each. Only masked tokens go through the head: the
    official code runs it on every token and zero-weights the rest, which gives the same loss.
    """
    b, n, _ = tokens.shape
    device = tokens.device
    num_masked = int(math.ceil(n * mask_ratios(1, rng, mask_ratio_min)[0]))
    orders = torch.argsort(torch.rand(b, n, generator=generator), dim=1).to(device)
    masked = torch.zeros(b, n, dtype=torch.bool, device=device)
    masked.scatter_(1, orders[:, :num_masked], True)

    cond = model.condition(labels)
    drop = (torch.rand(b, generator=generator) < label_drop_prob).to(device)
    cond = torch.where(drop.view(-1, *(1,) * (cond.ndim - 1)), model.null_condition(b).to(cond.dtype), cond)

    z = model(tokens, ~masked, cond)
    z_masked = z[masked].repeat(diffusion_batch_mul, 1)
    target = tokens[masked].repeat(diffusion_batch_mul, 1)
    return model.diffloss.loss(z_masked, target, generator)


def vae_loss(vae, images: torch.Tensor, generator: torch.Generator, kl_weight: float = 1e-6
             ) -> tuple[torch.Tensor, dict[str, float]]:
    """Reconstruction (L1 + L2) of a posterior sample plus a weighted KL to N(0, I), per pixel / latent sum."""
    posterior = vae.encode(images).latent_dist
    latents = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator).to(images.device)
    recon = vae.decode(latents).sample
    l1, l2 = (recon - images).abs().mean(), ((recon - images) ** 2).mean()
    kl = posterior.kl().mean()
    loss = l1 + l2 + kl_weight * kl
    return loss, {"l1": l1.item(), "mse": l2.item(), "kl": kl.item()}


def classifier_loss(net, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    logits = net(images)
    loss = F.cross_entropy(logits, labels)
    return loss, {"acc": (logits.argmax(1) == labels).float().mean().item()}
