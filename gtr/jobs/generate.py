"""Evaluation-scale generation: N images (the official protocol: ``images_per_class`` per class, class =
id // images_per_class), sharded over processes, resumable, scored with FID/IS.

Determinism: the id list is cut into fixed batches (batch k = ids [kB, (k+1)B)) and batch k runs on rank
k % world, every image drawing from its own (seed, id) stream; a batch is computed the same way whichever process
runs it, so 1 process and N processes, and a run restarted any number of times, write the same bytes. Images are
written atomically; a restart skips every image whose PNG exists and decodes, and redoes the batches that miss
some. Rank 0 then packs the folder into an ``.npz`` in the ADM evaluator's layout (``arr_0``, uint8 [N, H, W, 3])
and, when asked, scores it.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
from omegaconf import OmegaConf
from PIL import Image

from gtr.config import run_tag
from gtr.config.schema import check_count
from gtr.errors import GtRError, require
from gtr.files import atomic_path, write_json
from gtr.jobs.common import Run, cache_settings, resolve_device
from gtr.jobs.distributed import Distributed, render_sharded
from gtr.jobs.output import check_complete, check_writable, claim_output, git_commit, run_settings


def pack_npz(images: Sequence[Path], path: Path) -> Path:
    """PNG files as one ADM-layout .npz (``arr_0``, uint8 [N, H, W, 3]), written atomically and streamed: one image
    in memory at a time, whatever N (50k 256-px images are 9.8 GB). Readable by ``np.load`` and the ADM evaluator."""
    first = np.asarray(Image.open(images[0]).convert("RGB"))
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
              "shape": (len(images), *first.shape)}
    with atomic_path(path) as tmp:  # nothing half-written is left
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            with archive.open("arr_0.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_2_0(f, header)
                for image_path in images:
                    image = np.asarray(Image.open(image_path).convert("RGB"))
                    if image.shape != first.shape:
                        raise GtRError(f"{image_path} is {image.shape[1]}x{image.shape[0]}, the others "
                                       f"{first.shape[1]}x{first.shape[0]}: one .npz holds images of one size")
                    f.write(np.ascontiguousarray(image).tobytes())
    return path


def log_to_wandb(cfg, record: dict, images_dir: Path) -> None:
    """Config, metrics and a grid of the first images to wandb, when ``wandb.enabled``."""
    from gtr.tracking import start_wandb
    run = start_wandb(cfg, job_type="generate")
    if run is None:
        return
    wandb = require("wandb", "track")
    first = [np.asarray(Image.open(images_dir / f"{i:05d}.png").convert("RGB"))
             for i in range(min(64, record["num_images"]))]
    run.log({**{f"metrics/{k}": v for k, v in record.get("metrics", {}).items() if isinstance(v, (int, float))},
             "samples": [wandb.Image(a) for a in first]})
    run.summary.update({"num_images": record["num_images"], "git_commit": record["git_commit"]})
    run.finish()


def generate(cfg, sampler_config: str | None = None) -> dict:
    """Run (or resume) the generation job of ``cfg``; returns the results record (rank 0 writes it).
    ``sampler_config`` names the sampler config file and a chosen cache (``gtr_16``, ``gtr_16+lazymar``: the run
    tag), which the tables script matches rows by."""
    out = Path(cfg.output_dir)
    images_dir = out / "images"
    check_writable(images_dir)
    runtime = Distributed(resolve_device(cfg.device))
    try:
        return _generate(cfg, runtime, out, images_dir, sampler_config)
    finally:
        runtime.close()


def _generate(cfg, runtime: Distributed, out: Path, images_dir: Path, sampler_config: str | None) -> dict:
    run = Run.configure(cfg, runtime.device)
    check_count("images_per_class", cfg.images_per_class)
    if cfg.num_images is not None:
        check_count("num_images", cfg.num_images)
    num_images = int(cfg.num_images or cfg.model.num_classes * cfg.images_per_class)
    labels = np.arange(num_images) // cfg.images_per_class
    if labels.max() >= cfg.model.num_classes:
        raise GtRError(f"{num_images} images at {cfg.images_per_class} per class need {labels.max() + 1} classes; "
                       f"{cfg.model.name} has {cfg.model.num_classes}: lower num_images or raise images_per_class")
    claim_output(out, run_settings(cfg, runtime.device, num_images=num_images, images_per_class=cfg.images_per_class),
                 runtime.rank, folders=[images_dir])
    if cfg.metrics.enabled:
        from gtr.eval.metrics import Scoring
        Scoring.from_config(cfg).preflight()
    run.load("class", images=num_images, runtime=runtime)
    if runtime.rank == 0:
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        (out / ".samples.npz.tmp").unlink(missing_ok=True)  # a pack cut short by a kill

    def path_of(i: int) -> Path:
        return images_dir / f"{i:05d}.png"

    generated, seconds = render_sharded(runtime, run, num_images, path_of, lambda ids: labels[ids])
    record = {}
    if runtime.rank == 0:
        check_complete(num_images, path_of)
        record = {"model": cfg.model.name, "sampler_config": sampler_config,
                  "sampler": OmegaConf.to_container(cfg.sampler, resolve=True), **cache_settings(cfg),
                  "seed": cfg.seed, "num_images": num_images, "images_per_class": cfg.images_per_class,
                  "world_size": runtime.world, "device": str(run.device), "precision": cfg.precision,
                  "batch_size": cfg.batch_size, "mode": run.mode,  # mode: this session's (a resumed run's last)
                  "generated_by_rank0": generated, "seconds_rank0": seconds, "git_commit": git_commit(),
                  "images": str(images_dir)}
        if cfg.npz:  # streamed from the PNGs, as the scorer is: rank 0's memory does not grow with num_images
            record["npz"] = str(pack_npz([path_of(i) for i in range(num_images)], out / "samples.npz"))
        if cfg.metrics.enabled:
            from gtr.eval.metrics import Scoring
            from gtr.eval.sources import png_batches
            record["metrics"] = Scoring.from_config(cfg).score(png_batches([path_of(i) for i in range(num_images)]),
                                                               run.device, labels=labels, num_images=num_images)
        write_json(out / "results.json", record)
        log_to_wandb(cfg, record, images_dir)
    return record  # the other ranks leave after generation: none waits on rank 0's scoring


def main(cfg) -> None:
    """``scripts/generate.py``: the run named by its sampler (``gtr_16``, or ``gtr_16+lazymar`` with a cache)."""
    record = generate(cfg, sampler_config=run_tag(cfg.sampler.name))
    if record:  # rank 0
        metrics = record.get("metrics", {})
        print(f"wrote {cfg.output_dir}/results.json" + (f": {metrics}" if metrics else ""))
