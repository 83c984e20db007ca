"""The command-line jobs, as console entry points of the installed package (``gtr-sample``, ``gtr-sample-t2i``,
``gtr-generate``, ``gtr-geneval``, ``gtr-train``) and behind the thin ``scripts/*.py`` of a clone. Each is a Hydra
job over the configs shipped in the package (:data:`gtr.pipeline.CONFIGS`), so a wheel install runs outside a clone:

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
from gtr.errors import GtRError, one_line_errors
from gtr.schema import register


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
    from gtr.generate import generate as run
    from gtr.pipeline import run_tag
    record = run(cfg, sampler_config=run_tag(cfg.sampler.name))  # gtr_16, or gtr_16+lazymar
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
    from pathlib import Path

    from gtr.pipeline import check_writable
    from gtr.tracking import start_wandb
    from gtr.training.jobs import JOBS
    if cfg.train.job not in JOBS:
        raise GtRError(f"unknown training job {cfg.train.job!r}: choose train=tokenizer, mar or classifier")
    check_writable(Path(cfg.out_dir), "out_dir")  # before the data is read and encoded
    run = start_wandb(cfg, job_type=f"train-{cfg.train.job}")
    path = JOBS[cfg.train.job](cfg, run)
    if run is not None:
        run.finish()
    print(f"wrote {path}")


def score(argv: list[str] | None = None) -> None:
    """``gtr-score`` / ``scripts/score.py``: FID/IS of a folder or ADM ``.npz``, or its statistics (``--save-stats``)."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="gtr-score", description=score.__doc__.split(":", 1)[1].strip())
    parser.add_argument("images", type=Path, help="a folder of .png/.jpg images or an .npz with arr_0 [N, H, W, 3]")
    parser.add_argument("--reference", help="adm_in256 (official ImageNet-256 statistics), an .npz of mu/sigma, a "
                                            "folder of reference images, fashion_mnist:<split> "
                                            "(fashion_mnist32:<split>: resized to 32 px) or scenes:<split>")
    parser.add_argument("--extractor", default="inception", choices=["inception", "fmnist", "scenes"],
                        help="inception: FID/IS (torch-fidelity's Inception-v3); fmnist / scenes: the analogues of "
                             "the Fashion-MNIST / scenes testbeds")
    parser.add_argument("--labels", type=Path, help=".npy of class labels, one per image (fmnist, scenes: class "
                                                    "accuracy; scenes: exact validity)")
    parser.add_argument("--save-stats", type=Path, help="write the images' FID statistics here instead of scoring")
    parser.add_argument("--out", type=Path, help="also write the scores as JSON here")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--weights-root", default="pretrained_models")
    parser.add_argument("--no-download", action="store_true", help="never download (Inception, named references)")
    parser.add_argument("--data-root", help="Fashion-MNIST folder (for fashion_mnist references)")
    args = parser.parse_args(argv)
    with one_line_errors():
        import numpy as np

        from gtr.eval.score import folder_statistics, score_config, score_images
        from gtr.files import write_json
        from gtr.pipeline import check_count, resolve_device
        check_count("--batch-size", args.batch_size)
        if args.save_stats is None and args.reference is None:
            raise GtRError("say what to compare with: --reference adm_in256 | <stats.npz> | <folder> | "
                           "fashion_mnist:test (or --save-stats <out.npz> to write statistics)")
        device = resolve_device(args.device)
        cfg = score_config(args.extractor, args.reference, args.weights_root, not args.no_download, True,
                           args.data_root)
        if args.save_stats is not None:
            print(f"wrote {folder_statistics(args.images, args.save_stats, cfg, device, args.batch_size)}")
            return
        labels = None
        if args.labels is not None:
            try:
                labels = np.load(args.labels, allow_pickle=False).reshape(-1)
                if labels.dtype.kind not in "iu":
                    raise ValueError(f"dtype {labels.dtype}")
            except (OSError, ValueError) as err:
                raise GtRError(f"cannot read labels {args.labels} ({err}): give an .npy of integers") from err
        result = score_images(args.images, cfg, device, labels, args.batch_size)
        if args.out is not None:
            write_json(args.out, result, indent=2)
    print(json.dumps(result, indent=2))
