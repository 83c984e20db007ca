"""Completing partially given images (the paper's Figure 3): some tokens are fixed, the rest are sampled with
MAR's schedule (cosine counts over the unknown tokens, a random order among them)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gtr.errors import GtRError
from gtr.sampling.mar import MARSampler, cosine_counts
from gtr.sampling.rng import RandomSource
from gtr.sampling.schedule import ARStep


def checkerboard_mask(h: int, w: int) -> torch.Tensor:
    """[h*w] bool, True on the (i + j) even cells: half of the grid, evenly spread."""
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return ((i + j) % 2 == 0).reshape(-1)


def block_mask(h: int, w: int) -> torch.Tensor:
    """[h*w] bool with the same number of True cells as :func:`checkerboard_mask`, as one contiguous block of
    rows from the top (raster order)."""
    mask = torch.zeros(h * w, dtype=torch.bool)
    mask[: int(checkerboard_mask(h, w).sum())] = True
    return mask


@dataclass
class CompletionSampler(MARSampler):
    """MAR sampling of the positions where ``given`` is False, the others fixed to ``given_tokens`` [B, N, C]."""
    given_tokens: torch.Tensor = field(default=None, repr=False)
    given: torch.Tensor = field(default=None, repr=False)  # [N] bool, the same for every image
    name = "completion"

    def __post_init__(self):
        super().__post_init__()
        if self.given_tokens is None or self.given is None or self.given.ndim != 1:
            raise GtRError("CompletionSampler needs given_tokens [B, N, C] and a given mask [N]")
        if self.given.all():
            raise GtRError("every token is given: nothing to complete")

    def plan(self, seq_h: int, seq_w: int) -> list[ARStep]:
        n, unknown = seq_h * seq_w, int((~self.given).sum())
        if len(self.given) != n:
            raise GtRError(f"the given mask has {len(self.given)} cells, the grid {n}")
        return self.steps(*cosine_counts(unknown, min(self.num_iter, unknown)), n)

    def order(self, seq_h: int, seq_w: int, rng: RandomSource) -> torch.Tensor:
        free = (~self.given).nonzero()[:, 0]
        return free[rng.permutation(len(free))]

    def initial_tokens(self, batch_size: int, num_tokens: int, dim: int):
        if self.given_tokens.shape != (batch_size, num_tokens, dim):
            raise GtRError(f"given_tokens {tuple(self.given_tokens.shape)} do not fit a batch of {batch_size} images "
                           f"of {num_tokens} tokens of size {dim}")
        known = self.given.to(self.given_tokens.device).expand(batch_size, -1)
        return torch.where(known[..., None], self.given_tokens, torch.zeros_like(self.given_tokens)), known
