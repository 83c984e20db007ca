"""Sharded rendering: the processes of a ``torchrun`` (or SLURM) job (:class:`Distributed`) and the loop that renders
each rank's fixed batches into numbered PNGs, skipping the images a stopped run already wrote
(:func:`render_sharded`).
"""
from __future__ import annotations

import datetime
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from gtr.images import save_png
from gtr.jobs.common import Run, batches_of_rank
from gtr.jobs.output import image_ok


class Distributed:
    """torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), a SLURM job's tasks (submitit launcher), or a single
    process."""

    def __init__(self, device: torch.device):
        if "WORLD_SIZE" not in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
            from submitit.helpers import TorchDistributedEnvironment
            TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = device
        if self.world > 1:
            if device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                    timeout=datetime.timedelta(hours=2))

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def all_ok(self, ok: bool) -> bool:
        """Whether every rank is ``ok``: lets a failure seen by one rank stop all of them together."""
        if self.world == 1:
            return ok
        flag = torch.tensor([int(ok)], device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()


def render_sharded(runtime: Distributed, run: Run, num_images: int, path_of: Callable[[int], Path],
                   condition_of: Callable[[list[int]], Any], desc: str | None = None) -> tuple[int, float]:
    """Render this rank's share of images 0..num_images-1 to ``path_of(id)`` with a loaded :class:`Run` (its
    config: seed, batch_size, precision, progress, cache, mode), skipping every batch whose images all exist and
    decode; returns (images generated, seconds) on this rank. All ranks meet at a barrier at the end."""
    cfg = run.cfg
    mine = batches_of_rank(num_images, cfg.batch_size, runtime.rank, runtime.world)
    for ids in mine:  # half-written files of a killed run (each rank clears its own)
        for i in ids:
            path_of(i).with_name(f".{path_of(i).name}.tmp").unlink(missing_ok=True)
    size = run.model.config.img_size
    todo = [b for b in mine if not all(image_ok(path_of(i), size) for i in b)]
    done_before = sum(len(b) for b in mine) - sum(len(b) for b in todo)
    seconds, t0 = 0.0, time.perf_counter()
    with tqdm(total=sum(len(b) for b in mine), initial=done_before, unit="img", dynamic_ncols=True,
              desc=f"{desc or run.description} (rank 0 of {runtime.world})",
              disable=not cfg.progress or runtime.rank != 0) as bar:
        for ids, batch in run.render(todo, condition_of):
            seconds += time.perf_counter() - t0
            for image_id, image in zip(ids, batch):
                path = path_of(image_id)
                if not image_ok(path, size):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    save_png(image, path)
            bar.update(len(ids))
            t0 = time.perf_counter()
    runtime.barrier()
    return sum(len(b) for b in todo), seconds
