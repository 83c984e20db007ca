"""Where a sampler's random numbers come from.

``PerImageRNG`` (the default) gives every image its own generator seeded from (seed, image index), so an image
is the same whatever the batch size, the number of GPUs or the point a run was restarted from. Noise is drawn on
the CPU and moved to the device, so CPU and GPU runs consume identical random numbers.

``OfficialRNG`` reproduces the official MAR code's draws on the global generators, in its order: one numpy
shuffle per image before anything else, then per AR step one CPU ``torch.randn`` for x_T and one device
``randn_like`` of the (CFG-doubled) state per diffusion step. It is the only code that touches the global RNGs (the
random initialisation of models and tokenizers seeds them inside a fork: :func:`gtr.weights.seeded`; the training
jobs seed them, as training scripts do).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

NoiseFn = Callable[[int], torch.Tensor]


class RandomSource:
    batch_size: int

    def permutation(self, n: int) -> torch.Tensor:
        """One random permutation of range(n) per image: [B, n] long (on the CPU)."""
        raise NotImplementedError

    def uniform(self, n: int) -> torch.Tensor:
        """n uniform numbers in [0, 1) per image: [B, n] (on the CPU)."""
        raise NotImplementedError

    def begin_step(self, num_tokens: int, noise_steps: int, dim: int) -> None:
        """Called once per AR step before any :meth:`diffusion_noise` of that step."""

    def diffusion_noise(self, rows: torch.Tensor, cols: torch.Tensor, num_steps: int, dim: int,
                        guided: bool) -> tuple[torch.Tensor, NoiseFn]:
        """x_T [M, dim] and the per-iteration noise for the M tokens (image ``rows[m]``, ``cols[m]``-th token of
        this step), listed in (image, raster position) order."""
        raise NotImplementedError


def image_seed(seed: int, image_index: int) -> int:
    """A 63-bit generator seed for one image, mixed by numpy's SeedSequence so nearby indices are unrelated."""
    hi, lo = np.random.SeedSequence([seed, image_index]).generate_state(2, dtype=np.uint32)
    return (int(hi) << 31 | int(lo)) & ((1 << 63) - 1)


class PerImageRNG(RandomSource):
    def __init__(self, seed: int, image_ids: Sequence[int], device: torch.device | str = "cpu"):
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.device = torch.device(device)
        self.generators = [torch.Generator().manual_seed(image_seed(seed, int(i))) for i in image_ids]
        self.batch_size = len(self.generators)
        self._noise: torch.Tensor | None = None

    def permutation(self, n: int) -> torch.Tensor:
        return torch.stack([torch.randperm(n, generator=g) for g in self.generators])

    def uniform(self, n: int) -> torch.Tensor:
        return torch.stack([torch.rand(n, generator=g) for g in self.generators])

    def begin_step(self, num_tokens: int, noise_steps: int, dim: int) -> None:
        # Each token gets x_T plus one noise per diffusion iteration, up to the step's declared maximum.
        draws = [torch.randn(num_tokens, 1 + noise_steps, dim, generator=g) for g in self.generators]
        self._noise = torch.stack(draws).to(self.device)

    def diffusion_noise(self, rows, cols, num_steps, dim, guided):
        assert self._noise is not None, "begin_step() must be called first"
        noise = self._noise[rows, cols]  # [M, 1 + noise_steps, dim]
        return noise[:, 0], lambda k: noise[:, 1 + k]


class OfficialRNG(RandomSource):
    """The official draw order on the global generators; seed them (``torch.manual_seed``, ``np.random.seed``)
    before sampling, as the official scripts do once per process."""

    def __init__(self, batch_size: int, device: torch.device | str = "cpu"):
        self.batch_size = batch_size
        self.device = torch.device(device)

    def permutation(self, n: int) -> torch.Tensor:
        orders = []
        for _ in range(self.batch_size):
            order = np.arange(n)
            np.random.shuffle(order)
            orders.append(torch.from_numpy(order))
        return torch.stack(orders)

    def uniform(self, n: int) -> torch.Tensor:
        return torch.rand(self.batch_size, n)

    def diffusion_noise(self, rows, cols, num_steps, dim, guided):
        m = len(rows)
        x_T = torch.randn(m, dim).to(self.device)  # CPU generator, then moved (DiffLoss.sample)
        rows_drawn = 2 * m if guided else m  # randn_like of the doubled state; only the first half is used

        def step_noise(k: int) -> torch.Tensor:
            return torch.randn(rows_drawn, dim, device=self.device)[:m]

        return x_T, step_noise
