"""The one executor that runs any schedule on any masked-autoregressive model.

Per AR step: one transformer pass over the batch (the conditional and unconditional halves as one doubled batch
when guided), then one diffusion-head run for all tokens of the batch that need the same number of diffusion
steps. There is no Python loop over tokens or images.

The model contract (``MAR`` here, LightGen later): ``seq_h``, ``seq_w``, ``token_dim``, ``condition(c)``,
``null_condition(B)``, ``forward(tokens, known, cond) -> z`` and a ``diffloss`` head with ``sample``, called through
the cache's runner (:mod:`gtr.sampling.cache`): ``cache=none`` calls the model as it is, LazyMAR reuses work across
steps. Schedule and cache are independent axes: any schedule runs with any cache.
"""
from __future__ import annotations

import contextlib
from typing import Sequence

import torch
from tqdm.auto import tqdm

from gtr.errors import GtRError
from gtr.sampling.cache import NO_CACHE, Cache
from gtr.sampling.rng import OfficialRNG, PerImageRNG, RandomSource
from gtr.sampling.schedule import Schedule, check_plan

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
RNG_MODES = ("per_image", "official")


def autocast(device: torch.device, precision: str):
    if precision not in PRECISIONS:
        raise GtRError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@torch.no_grad()
def run_schedule(model: torch.nn.Module, schedule: Schedule, conditions, rng: RandomSource,
                 precision: str = "fp32", progress: bool = False, cache: Cache | None = None,
                 mode: str = "eager") -> torch.Tensor:
    """Sample tokens [B, N, C] for ``conditions`` (class labels for MAR; None: unconditional, every image on the
    model's null condition, as the official ``sample_tokens(labels=None)``) following ``schedule``, evaluating the
    model through ``cache`` (None: no cache) with eager or compiled passes (``mode``: eager | compile | cudagraphs,
    :mod:`gtr.sampling.compiled`)."""
    device = next(model.parameters()).device
    b, (h, w), dim = rng.batch_size, (model.seq_h, model.seq_w), model.token_dim
    plan = schedule.plan(h, w)
    initial = schedule.initial_tokens(b, h * w, dim)
    if initial is None:
        tokens = torch.zeros(b, h * w, dim, device=device)
        known = torch.zeros(b, h * w, dtype=torch.bool, device=device)
    else:
        tokens, known = initial[0].to(device).float().clone(), initial[1].to(device).clone()
    check_plan(plan, h * w - int(known[0].sum()) if b else h * w, schedule.name)
    order = schedule.order(h, w, rng).to(device)
    cond = model.null_condition(b) if conditions is None else model.condition(conditions)
    if cond.shape[0] != b:
        raise GtRError(f"got {cond.shape[0]} conditions for a batch of {b} images")
    guided = schedule.guided
    if guided:
        cond = torch.cat([cond, model.null_condition(b)])

    def doubled(x: torch.Tensor) -> torch.Tensor:  # the unconditional half repeats the conditional one
        return torch.cat([x, x]) if guided else x

    runner = (cache or NO_CACHE).runner(model, plan, mode)
    start = 0
    for index, step in enumerate(tqdm(plan, desc="AR steps", leave=False, disable=not progress)):
        # Raster order inside a step: the official code lists the predicted tokens (and their noise) this way.
        positions = order[:, start:start + step.num_tokens].sort(dim=1).values
        start += step.num_tokens
        with autocast(device, precision):
            z = runner.transformer(index, doubled(tokens), doubled(known), cond, positions)
        z = torch.gather(z, 1, doubled(positions)[..., None].expand(-1, -1, z.shape[-1]))
        z_cond, z_uncond = (z[:b], z[b:]) if guided else (z, None)

        token_steps = schedule.assign_diffusion_steps(index, step, z_cond, rng)
        if token_steps is None:
            token_steps = torch.full(positions.shape, step.diffusion_steps, device=device)
        rng.begin_step(step.num_tokens, step.noise_steps, dim)
        for num_steps in sorted(token_steps.unique().tolist()):
            rows, cols = (token_steps == num_steps).nonzero(as_tuple=True)  # (image, raster) order
            x_T, step_noise = rng.diffusion_noise(rows, cols, num_steps, dim, guided)
            with autocast(device, precision):
                values = runner.diffusion(z_cond[rows, cols], x_T, num_steps, step_noise, step.temperature,
                                          None if z_uncond is None else z_uncond[rows, cols], step.cfg,
                                          schedule.clip_timestep)
            tokens[rows, positions[rows, cols]] = values.float()
        known.scatter_(1, positions, True)
    return tokens


def make_rng(rng: str, batch_size: int, seed: int, image_ids: Sequence[int] | None, device) -> RandomSource:
    if rng == "per_image":
        ids = range(batch_size) if image_ids is None else image_ids
        if len(ids) != batch_size:
            raise GtRError(f"got {len(ids)} image ids for a batch of {batch_size} images")
        return PerImageRNG(seed, ids, device)
    if rng == "official":
        return OfficialRNG(batch_size, device)
    raise GtRError(f"unknown rng mode {rng!r}: choose one of {', '.join(RNG_MODES)}")
