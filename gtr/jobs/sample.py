"""``scripts/sample.py`` (``gtr-sample``): a few classes' images as numbered PNGs and a labelled grid, one row per
class (:func:`sample_to_folder`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from gtr.config.schema import check_count
from gtr.data import CLASS_NAMES as FASHION_CLASSES
from gtr.data.scenes import CLASS_NAMES as SCENE_CLASSES
from gtr.errors import GtRError
from gtr.images import imagenet_class_names, labelled_grid, save_png
from gtr.jobs.common import Run, batches_of_rank, check_labels, resolve_device, run_job
from gtr.jobs.output import check_writable, claim_output, clear_images, run_settings


def row_names(model_cfg: Mapping[str, Any], classes: list[int]) -> list[str]:
    kind = model_cfg.get("class_names")
    names = {"imagenet": imagenet_class_names, "fashion_mnist": lambda: list(FASHION_CLASSES),
             "scenes": lambda: list(SCENE_CLASSES)}.get(kind, lambda: None)()
    return [f"{c} {names[c]}" if names else str(c) for c in classes]


def sample_to_folder(cfg) -> Path:
    """Run ``scripts/sample.py``'s job: PNGs ``images/{id:05d}.png``, ``grid.png`` and ``config.yaml`` in
    ``cfg.output_dir``. Returns the grid's path."""
    out = Path(cfg.output_dir)
    check_writable(out / "images")
    run = Run.configure(cfg, resolve_device(cfg.device))
    unconditional = cfg.classes is None  # classes=null: one row of images without a class (the model's null class)
    classes = [] if unconditional else list(cfg.classes)
    if not unconditional and not classes:
        raise GtRError("need at least one class (or classes=null for unconditional samples)")
    check_labels(classes)
    check_count("images_per_class", cfg.images_per_class)
    labels = np.repeat(np.asarray(classes, dtype=np.int64), cfg.images_per_class)  # row-major grid, a row per class
    count = cfg.images_per_class if unconditional else len(labels)
    run.load("class", images=count)
    if not unconditional:  # bad labels fail before any work is done
        run.model.condition(torch.as_tensor(labels, device=run.device))
    claim_output(out, run_settings(cfg, classes=None if unconditional else classes,
                                   images_per_class=cfg.images_per_class, rng=cfg.rng), rank=0,
                 folders=[out / "images"])
    clear_images(out / "images")  # this run draws them again (and a folder of an older version holds only its own)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    if cfg.rng == "official":  # the official scripts seed the global generators once per process
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
    images = []
    with tqdm(total=count, unit="img", desc=run.description, disable=not cfg.progress) as bar:
        for ids, batch in run.render(batches_of_rank(count, cfg.batch_size),
                                     lambda ids: None if unconditional else labels[ids]):
            for image_id, image in zip(ids, batch):
                save_png(image, out / "images" / f"{image_id:05d}.png")
            images.append(batch)
            bar.update(len(ids))
    tiles = torch.cat(images)
    upscale = int(cfg.model.get("grid_upscale", 1))
    if upscale > 1:
        tiles = tiles.repeat_interleave(upscale, dim=1).repeat_interleave(upscale, dim=2)
    grid = labelled_grid(tiles, ["unconditional"] if unconditional else row_names(cfg.model, classes))
    save_png(grid, out / "grid.png")
    return out / "grid.png"


def main(cfg) -> None:
    """``scripts/sample.py``."""
    run_job(sample_to_folder, cfg)
