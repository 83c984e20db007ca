"""``sample``: latents from a model and a schedule in one call (the executor with its random streams, mode and cache
set up), re-exported as ``gtr.sample``."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from gtr.errors import GtRError
from gtr.sampling.cache import Cache
from gtr.sampling.compiled import check_mode
from gtr.sampling.executor import make_rng, run_schedule
from gtr.sampling.schedule import Schedule


def sample(model, sampler: Schedule, labels, *, seed: int | None = 0, image_ids: Sequence[int] | None = None,
           rng: str = "per_image", precision: str = "fp32", progress: bool = False,
           cache: Cache | None = None, num_images: int | None = None, mode: str = "eager") -> torch.Tensor:
    """Latents [B, C, H, W] for class ``labels`` (ready for ``tokenizer.decode``), or for text features [B, L, C]
    with a text-to-image model (LightGen).

    ``rng="per_image"``: image k of the batch uses its own stream from (seed, image_ids[k]) (default ids 0..B-1),
    so results do not depend on batching. ``rng="official"``: the official code's draws on the global generators,
    which are seeded with ``seed`` first (``seed=None`` continues the current global streams).
    ``cache``: how the model is evaluated across steps (None: in full; ``build_cache("lazymar")``: LazyMAR).
    ``labels=None`` samples ``num_images`` images unconditionally (every image on the model's null condition, CFG
    included, as the official ``sample_tokens(labels=None)``).
    ``mode="compile"``: the transformer pass and diffusion-head step through ``torch.compile`` (same samples to float
    tolerance, faster after a one-off compilation; :mod:`gtr.sampling.compiled`).
    """
    if labels is None:
        if num_images is None or isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
            raise GtRError(f"unconditional sampling (labels=None) needs num_images >= 1, got {num_images!r}")
        count, conditions = num_images, None
    else:
        labels = torch.as_tensor(labels)
        labels = labels.float() if labels.is_floating_point() else labels.long().reshape(-1)
        count, conditions = len(labels), labels
    device = next(model.parameters()).device
    check_mode(mode, device)
    if rng == "official" and seed is not None:
        torch.manual_seed(seed)
        np.random.seed(seed)
    source = make_rng(rng, count, 0 if seed is None else seed, image_ids, device)
    tokens = run_schedule(model, sampler, None if conditions is None else conditions.to(device), source,
                          precision=precision, progress=progress, cache=cache, mode=mode)
    return model.unpatchify(tokens)
