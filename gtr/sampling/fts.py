"""Frequency-weighted Token Selection (FTS, Sec. 3.3): score each token by the frequency content of its
conditioning vector z and give the highest-scoring ones more diffusion steps."""
from __future__ import annotations

import torch


def fts_scores(z: torch.Tensor) -> torch.Tensor:
    """Eq. 5: s = sum_{n=1}^{floor(D/2)} |DFT(z)(n)| * (1 + n / floor(D/2)), over the last (feature) dimension."""
    d = z.shape[-1]
    half = d // 2
    amplitude = torch.fft.rfft(z.float(), dim=-1).abs()[..., 1:half + 1]  # drop the DC term n = 0
    weights = 1 + torch.arange(1, half + 1, device=z.device, dtype=amplitude.dtype) / half
    return (amplitude * weights).sum(-1)


def top_fraction_mask(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """Per row, the int(fraction * n) highest scores (ties broken by position)."""
    n = scores.shape[-1]
    count = int(fraction * n)
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if count > 0:
        mask.scatter_(-1, scores.topk(count, dim=-1).indices, True)
    return mask
