"""The command-line jobs, as console entry points of the installed package (``gtr-sample``, ``gtr-sample-t2i``,
``gtr-generate``, ``gtr-geneval``, ``gtr-train``) and behind the thin ``scripts/*.py`` of a clone. Each is a Hydra
job over the configs shipped in the package (:data:`gtr.config.CONFIGS`), so a wheel install runs outside a clone:

    gtr-sample                                      # = python scripts/sample.py
    gtr-generate model=mar_fmnist sampler=gtr       # = python scripts/generate.py ...

Heavy modules are imported inside each job, so one job does not load another's stack.
"""
from __future__ import annotations

import functools
import sys

import hydra
from omegaconf import DictConfig

from gtr.config import CONFIGS, preflight
from gtr.errors import one_line_errors
from gtr.config.schema import register


def _job(config_name: str):
    """A Hydra job over the shipped config ``config_name`` whose command line is composed and checked first
    (:func:`gtr.config.preflight`): configuration errors are one line and exit 2 before anything runs."""
    def decorate(fn):
        hydra_main = hydra.main(config_path=str(CONFIGS), config_name=config_name, version_base="1.3")(
            _one_line_errors(fn))

        @functools.wraps(fn)
        def entry() -> None:
            register()  # the model registry and the schemas, which Hydra's own --help also composes
            preflight(config_name, sys.argv[1:])
            hydra_main()
        return entry
    return decorate


def _one_line_errors(fn):
    @functools.wraps(fn)
    def job(cfg: DictConfig) -> None:
        with one_line_errors(cfg.get("output_dir") or cfg.get("out_dir")):
            fn(cfg)
    return job


@_job("sample")
def sample(cfg: DictConfig) -> None:
    """Class-conditional (or ``classes=null``: unconditional) PNGs and a labelled grid."""
    from gtr.jobs.sample import main
    main(cfg)


@_job("sample_t2i")
def sample_t2i(cfg: DictConfig) -> None:
    """Text-to-image with LightGen: PNGs and a grid with one captioned row per prompt."""
    from gtr.jobs.sample_t2i import main
    main(cfg)


@_job("generate")
def generate(cfg: DictConfig) -> None:
    """An evaluation set (resumable, any number of processes), scored with FID/IS."""
    from gtr.jobs.generate import main
    main(cfg)


@_job("geneval")
def geneval(cfg: DictConfig) -> None:
    """GenEval for LightGen: the official layout, scored, with per-task results."""
    from gtr.jobs.geneval import main
    main(cfg)


@_job("train")
def train(cfg: DictConfig) -> None:
    """The project's own networks (tokenizers, MARs, LightGen, classifiers); resumable."""
    from gtr.jobs.train import main
    main(cfg)


def score(argv: list[str] | None = None) -> None:
    """``gtr-score`` / ``scripts/score.py``: FID/IS of a folder or ADM ``.npz``, or its statistics (``--save-stats``)."""
    with one_line_errors():  # the [eval] extra, when missing, is named in one line
        from gtr.jobs.score import main
    main(argv)


def make_tables(argv: list[str] | None = None) -> None:
    """``scripts/make_tables.py``: results/table1.md ... table5.md (and a speed-quality plot) regenerated from what has
    been measured, each cell beside the paper's value and labelled by where it comes from (gtr/eval/tables.py)."""
    import argparse
    from pathlib import Path

    from gtr.eval.tables import RESULTS, write_tables
    from gtr.files import REPO_ROOT
    parser = argparse.ArgumentParser(prog="scripts/make_tables.py", description=make_tables.__doc__)
    parser.add_argument("--runs", nargs="+", default=[str(REPO_ROOT / "generated" / "*" / "results.json"),
                                                      str(REPO_ROOT / "multirun" / "**" / "results.json"),
                                                      str(RESULTS / "runs" / "*.json")])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with one_line_errors(args.out):
        print(write_tables(args.runs, args.out))
