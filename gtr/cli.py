"""The command-line jobs, as console entry points of the installed package (``gtr-sample``, ``gtr-sample-t2i``,
``gtr-generate``, ``gtr-geneval``, ``gtr-train``) and behind the thin ``scripts/*.py`` of a clone. Each is a Hydra
job over the configs shipped in the package (:data:`gtr.pipeline.CONFIGS`), so a wheel install runs outside a clone:

    gtr-sample                                      # = python scripts/sample.py
    gtr-generate model=mar_fmnist sampler=gtr       # = python scripts/generate.py ...

Heavy modules are imported inside each job, so one job does not load another's stack.
"""
from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from gtr.errors import GtRError
from gtr.pipeline import CONFIGS


def _job(config_name: str):
    return hydra.main(config_path=str(CONFIGS), config_name=config_name, version_base="1.3")


def _fail(err: GtRError) -> None:
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)


@_job("sample")
def sample(cfg: DictConfig) -> None:
    """Class-conditional (or ``classes=null``: unconditional) PNGs and a labelled grid."""
    from gtr.pipeline import main
    main(cfg)


@_job("sample_t2i")
def sample_t2i(cfg: DictConfig) -> None:
    """Text-to-image with LightGen: PNGs and a grid with one captioned row per prompt."""
    from gtr.t2i import main
    main(cfg)


@_job("generate")
def generate(cfg: DictConfig) -> None:
    """An evaluation set (resumable, any number of processes), scored with FID/IS."""
    try:
        from gtr.generate import generate as run
        from gtr.pipeline import run_tag
        record = run(cfg, sampler_config=run_tag(cfg.sampler.name))  # gtr_16, or gtr_16+lazymar
    except GtRError as err:
        _fail(err)
    if record:
        metrics = record.get("metrics", {})
        print(f"wrote {cfg.output_dir}/results.json" + (f": {metrics}" if metrics else ""))


@_job("geneval")
def geneval(cfg: DictConfig) -> None:
    """GenEval for LightGen: the official layout, scored, with per-task results."""
    from gtr.geneval import main
    main(cfg)


@_job("train")
def train(cfg: DictConfig) -> None:
    """The project's own Fashion-MNIST networks (tokenizer, MAR, classifier); resumable."""
    try:
        from gtr.tracking import start_wandb
        from gtr.training.jobs import JOBS
        if cfg.train.job not in JOBS:
            raise GtRError(f"unknown training job {cfg.train.job!r}: choose train=tokenizer, mar or classifier")
        run = start_wandb(cfg, job_type=f"train-{cfg.train.job}")
        path = JOBS[cfg.train.job](cfg, run)
        if run is not None:
            run.finish()
    except GtRError as err:
        _fail(err)
    print(f"wrote {path}")
