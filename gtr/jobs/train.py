"""``scripts/train.py`` (``gtr-train``): the project's own networks (tokenizers, MARs, LightGen, classifiers), one
recipe per ``train.job`` (:data:`gtr.training.jobs.JOBS`), resumable from the last checkpoint in ``out_dir``."""
from __future__ import annotations

from pathlib import Path

from gtr.errors import GtRError
from gtr.jobs.output import check_writable
from gtr.tracking import start_wandb
from gtr.training.jobs import JOBS


def main(cfg) -> None:
    if cfg.train.job not in JOBS:
        raise GtRError(f"unknown training job {cfg.train.job!r}: choose train=tokenizer, mar or classifier")
    check_writable(Path(cfg.out_dir), "out_dir")  # before the data is read and encoded
    run = start_wandb(cfg, job_type=f"train-{cfg.train.job}")
    path = JOBS[cfg.train.job](cfg, run)
    if run is not None:
        run.finish()
    print(f"wrote {path}")
