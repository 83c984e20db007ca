"""Algorithm 1 (Stage Partitioning): split an h x w token grid into K stages by checkerboard bisection.

For k = 1..K-1 the tokens with (i + j) mod 2^k = 2^(k-1) are pushed on a stack and the rest, (i + j) mod 2^k = 0,
carry on; the remainder is pushed last and the stack is popped LIFO. So S_1 is the sparsest lattice
((i + j) mod 2^(K-1) = 0), each later stage fills the gaps of the earlier ones, and S_K, the reconstruction stage,
is the odd checkerboard: every one of its tokens has its 4-neighbours in earlier stages.
"""
from __future__ import annotations

import torch

from gtr.errors import GtRError


def stage_partition(h: int, w: int, num_stages: int) -> list[torch.Tensor]:
    """Raster positions (i * w + j) of each stage S_1..S_K, ascending within a stage."""
    if num_stages < 1:
        raise GtRError(f"the number of GtR stages must be >= 1, got {num_stages}")
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    diagonal = (i + j).flatten()
    remaining = torch.ones(h * w, dtype=torch.bool)
    stack = []
    for k in range(1, num_stages):
        stack.append(remaining & (diagonal % 2**k == 2 ** (k - 1)))
        remaining = remaining & (diagonal % 2**k == 0)
    stack.append(remaining)
    stages = [mask.nonzero().flatten() for mask in reversed(stack)]
    if any(len(s) == 0 for s in stages):
        sizes = "/".join(str(len(s)) for s in stages)
        raise GtRError(f"K={num_stages} stages do not fit a {h}x{w} token grid (stage sizes {sizes}): use fewer stages")
    return stages
