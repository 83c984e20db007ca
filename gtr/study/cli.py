"""The studies' command lines (``scripts/toy_study.py``, ``scripts/scenes_study.py``, ``scripts/scenes_t2i_study.py``
call these): options checked before any work, then the study's own module does the work (:mod:`gtr.study.toy`,
:mod:`gtr.study.scenes` with :mod:`gtr.study.report`, :mod:`gtr.study.scenes_t2i`). Heavy modules are imported
inside each command, so a bad option is one line within a second."""
from __future__ import annotations

import argparse
import inspect
import shlex
import sys
from pathlib import Path
from typing import Sequence

from gtr.errors import one_line_errors
from gtr.files import REPO_ROOT


def toy(argv: Sequence[str] | None = None) -> None:
    """The paper's claims tested on the project's own Fashion-MNIST MARs, where anyone can re-run them.

        python scripts/toy_study.py --testbed fmnist16   # the 16x16-token testbed: Tables 1, 3, 4, 5 (results/toy_study_16x16.*)
        python scripts/toy_study.py                      # the 7x7-token embedded default (results/toy_study.*)
        python scripts/toy_study.py --quick              # reduced mode (tests): few samples, 2 seeds, 4 rows

    1,000 samples x 3 seeds per row by default. For every row: per-image FLOPs (counted), sampling time, and quality
    from the shipped classifier (FID analogue, IS analogue, class accuracy), mean and std over seeds; plus the Figure-3
    experiment. ``--device cuda`` runs it on a GPU in minutes and then times every row on this CPU as well
    (``--cpu-timing``). Results are saved after every row (re-running skips finished rows) and the report and plots
    are rewritten from them. The logic lives in :mod:`gtr.study.toy`.
    """
    from gtr.study.toy import TESTBEDS, run
    parser = argparse.ArgumentParser(prog="scripts/toy_study.py", description=inspect.cleandoc(toy.__doc__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--testbed", default="fmnist", choices=sorted(TESTBEDS),
                        help="fmnist: the 7x7-token default model; fmnist16: the 16x16-token testbed")
    parser.add_argument("--samples", type=int, default=None, help="images per row and seed (1000; --quick: 40)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="(0 1 2; --quick: 0 1)")
    parser.add_argument("--rows", nargs="+", default=None, help="row keys (default: all of the testbed's)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--figure3-images", type=int, default=None,
                        help="reference images of the Figure-3 experiment (100; --quick: 10); 0 skips it")
    parser.add_argument("--quick", action="store_true", help="reduced mode: 40 samples, seeds 0 1, 4 rows")
    parser.add_argument("--out", type=Path, default=None,
                        help="output stem (default results/toy_study or results/toy_study_16x16)")
    parser.add_argument("--data-root", default=None, help="Fashion-MNIST folder (for the FID reference)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda: where the quality rows run (and are timed)")
    parser.add_argument("--cpu-timing", type=int, default=None,
                        help="images per row timed on this CPU, for rows measured on a GPU (100; --quick: 0)")
    parser.add_argument("--retime", action="store_true",
                        help="time every measured row again on this CPU, side by side in interleaved rounds "
                             "(--cpu-timing images each; run it on a quiet machine): the CPU speed-ups of the report")
    parser.add_argument("--timing-passes", type=int, default=3,
                        help="rounds of --retime over all rows, interleaved; each row's time is its median (3)")
    args = parser.parse_args(argv)
    bed = TESTBEDS[args.testbed]
    defaults = ({"samples": 40, "seeds": [0, 1], "figure3_images": 10, "rows": list(bed.quick_rows), "cpu_timing": 0}
                if args.quick else {"samples": 1000, "seeds": [0, 1, 2], "figure3_images": 100, "rows": None,
                                    "cpu_timing": 100})
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.samples < 2 or args.batch_size < 1 or args.timing_passes < 1:
        parser.error("--samples must be at least 2, --batch-size and --timing-passes at least 1")
    command = " ".join(["python scripts/toy_study.py", *([f"--testbed {bed.name}"] if bed.name != "fmnist" else []),
                        *([f"--device {args.device}"] if args.device != "cpu" else [])])
    with one_line_errors():
        run(bed, keys=args.rows, samples=args.samples, seeds=args.seeds, batch_size=args.batch_size,
            figure3_images=args.figure3_images, device=args.device, cpu_timing=args.cpu_timing, retime=args.retime,
            timing_passes=args.timing_passes, data_root=args.data_root, out=args.out or REPO_ROOT / "results" / bed.stem,
            command=command)


def scenes(argv: Sequence[str] | None = None) -> None:
    """Does GtR hold? The paper's Tables 1, 3, 4 and 5 decided on the scenes testbed (``model=mar_scenes``).

        python scripts/scenes_study.py                          # every table (premise gate first): results/scenes_study.*
        python scripts/scenes_study.py --tables cfg             # first: the guidance sweep (64 steps; one seed each)
        python scripts/scenes_study.py --tables premise         # then, at its CFG (the model's default_cfg), the gate
        python scripts/scenes_study.py --rows gtr_16 mar_16     # some rows (their claims are decided once both sides exist)
        python scripts/scenes_study.py --report                 # rewrite the report from the stored results

    800 class-balanced images x 3 seeds per row (2,400: the validity interval is +-2 points or narrower; the guidance
    sweep's rows, which only pick the CFG, run the first --cfg-seeds seeds: one). Each row is a
    sampler config of configs/sampler run on the shipped model; per image the exact scorer says valid or not, per seed
    the scenes classifier gives FID/KID analogues. Rows beyond the premise gate and the guidance sweep run only once the
    gate has passed (``--ignore-gate`` overrides, for diagnosis), and so does Figure 3 (``--figure3-images`` samples of
    the 64-step baseline, half their tokens given as a checkerboard or a block, completed with ``--figure3-seeds`` seeds).
    Results are saved after every seed (a re-run resumes);
    a different model (``--checkpoint``, or retrained weights) starts a new attempt and keeps the old one's gate in the
    report. The logic lives in :mod:`gtr.study.scenes` and :mod:`gtr.study.report`.
    """
    from gtr.study.scenes import (GRID_ROWS, PREMISE, ROW, TABLES, figure3, load_state, measure, model_id, premise,
                                  rows_of, sample_grid, weights_file)
    parser = argparse.ArgumentParser(prog="scripts/scenes_study.py", description=inspect.cleandoc(scenes.__doc__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES, help="tables to measure")
    parser.add_argument("--rows", nargs="+", default=None, help="row keys (instead of --tables)")
    parser.add_argument("--samples", type=int, default=800, help="images per row and seed (800)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cfg-seeds", type=int, default=1,
                        help="seeds of the guidance sweep's rows (the first N of --seeds; 1: it only picks the CFG)")
    parser.add_argument("--batch-size", type=int, default=200, help="images per forward pass (changes bytes: recorded)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mode", default="eager", choices=("eager", "compile"), help="executor mode (recorded)")
    parser.add_argument("--checkpoint", default=None, help="another mar_scenes weights file (a new attempt)")
    parser.add_argument("--figure3-images", type=int, default=100,
                        help="images of the Figure 3 experiment (0: skip it); run once the gate has passed")
    parser.add_argument("--figure3-seeds", type=int, default=4, help="completions per image in Figure 3")
    parser.add_argument("--ignore-gate", action="store_true", help="run rows beyond the premise gate even if it fails")
    parser.add_argument("--report", action="store_true", help="only rewrite the report from the stored results")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "scenes_study", help="output stem")
    args = parser.parse_args(argv)
    if args.samples < 2 or args.batch_size < 1 or len(set(args.seeds)) < 2 or min(args.seeds) < 0:
        parser.error("--samples must be >= 2, --batch-size >= 1, and --seeds at least two distinct seeds >= 0")
    if not 1 <= args.cfg_seeds <= len(set(args.seeds)):
        parser.error(f"--cfg-seeds must be between 1 and the number of --seeds ({len(set(args.seeds))})")
    if args.figure3_images < 0 or args.figure3_images == 1 or args.figure3_seeds < 2:
        parser.error("--figure3-images must be 0 (skip) or >= 2, and --figure3-seeds >= 2")
    unknown = sorted(set(args.rows or []) - set(ROW))
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}: choose from {', '.join(ROW)}")
    with one_line_errors():
        from gtr.files import write_json
        from gtr.study.report import report
        path = args.out.with_suffix(".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        weights = weights_file("mar_scenes", args.checkpoint)
        settings = {"samples": args.samples, "seeds": sorted(args.seeds), "batch_size": args.batch_size,
                    "mode": args.mode}  # --cfg-seeds is not a setting: the sweep's rows record their seeds
        study = load_state(path, model_id(weights), settings)
        if not args.report:
            keys = args.rows or rows_of(args.tables)
            gated = [k for k in keys if k not in PREMISE and ROW[k].table != "cfg"]
            first = [k for k in keys if k not in gated]
            command = shlex.join(["python", "scripts/scenes_study.py", *(sys.argv[1:] if argv is None else argv)])
            options = dict(study=study, path=path, samples=args.samples, seeds=sorted(args.seeds),
                           batch_size=args.batch_size, device=args.device, mode=args.mode,
                           checkpoint=args.checkpoint, command=command)
            sweep = [k for k in first if ROW[k].table == "cfg"]  # first: it picks the CFG of the guided rows
            measure(sweep, **{**options, "seeds": sorted(set(args.seeds))[:args.cfg_seeds]})
            measure([k for k in first if k not in sweep], **options)
            open_gate = premise(study["current"])["passed"] or args.ignore_gate
            if gated:
                if open_gate:
                    measure(gated, **options)
                else:
                    print("the premise gate has not passed (see the report): the other rows were not run "
                          "(--tables premise measures it; --ignore-gate runs them anyway)", file=sys.stderr)
            f3 = study["current"].get("figure3") or {}
            wanted = {"images": args.figure3_images, "seeds": args.figure3_seeds}
            if open_gate and args.figure3_images and not args.rows and {k: f3.get(k) for k in wanted} != wanted:
                figure3(state=study["current"], path=args.out.with_name(f"{args.out.name}_figure3.png"),
                        count=args.figure3_images, seeds=args.figure3_seeds, device=args.device,
                        checkpoint=args.checkpoint)
                write_json(path, study)
            grid = {k: study["current"]["rows"].get(k, {}).get("sampler") for k in GRID_ROWS}
            sheet = args.out.with_name(f"{args.out.name}_samples.png")
            if study["current"].get("grid") != grid or not sheet.is_file():  # drawn again only when a row changed
                if sample_grid(GRID_ROWS, state=study["current"], path=sheet, device=args.device,
                               checkpoint=args.checkpoint):
                    study["current"]["grid"] = grid
        write_json(path, study)
        report(study, args.out.with_suffix(".md"))
        print(f"wrote {args.out.with_suffix('.md')}")


def scenes_t2i(argv: Sequence[str] | None = None) -> None:
    """Table 2 tested on the text-to-image scenes (``model=lightgen_scenes``), scored by GenEval's rules on exact
    detections.

        python scripts/scenes_t2i_study.py                      # every table (premise gate first): results/scenes_t2i_study.*
        python scripts/scenes_t2i_study.py --tables premise     # the premise gate only (32/16/12/8 AR steps)
        python scripts/scenes_t2i_study.py --rows gtr_16 lightgen_16
        python scripts/scenes_t2i_study.py --report             # rewrite the report from the stored results

    Each row runs scripts/geneval.py's job on the testbed's 553 evaluation prompts x 4 images per seed (GenEval's
    size), images under ``--images`` (resumable there too); per task, GenEval's rules decide each image. Rows beyond the
    premise gate and the guidance sweep run only once the gate has passed (``--ignore-gate`` overrides). Results are
    saved after every seed; a different model (``--checkpoint``, or retrained weights) starts a new attempt and keeps
    the old one's gate in the report. The logic lives in :mod:`gtr.study.scenes_t2i`.
    """
    from gtr.study.scenes_t2i import ROW, TABLES, load_state, measure, premise, report, rows_of
    parser = argparse.ArgumentParser(prog="scripts/scenes_t2i_study.py", description=inspect.cleandoc(scenes_t2i.__doc__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES, help="tables to measure")
    parser.add_argument("--rows", nargs="+", default=None, help="row keys (instead of --tables)")
    parser.add_argument("--n-samples", type=int, default=4, help="images per prompt and seed (4, GenEval's)")
    parser.add_argument("--num-prompts", type=int, default=None, help="the first N evaluation prompts (quick checks)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass (changes bytes: recorded)")
    parser.add_argument("--cfg", type=float, default=None,
                        help="guidance of every row outside the CFG sweep (default: the model's default_cfg)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mode", default="eager", choices=("eager", "compile"), help="executor mode (recorded)")
    parser.add_argument("--checkpoint", default=None, help="another lightgen_scenes weights file (a new attempt)")
    parser.add_argument("--text-checkpoint", default=None, help="its scenes_text encoder file")
    parser.add_argument("--override", action="append", default=[],
                        help="more model overrides, e.g. model.hparams.width=32 (tests; recorded)")
    parser.add_argument("--images", type=Path, default=REPO_ROOT / "runs" / "scenes_t2i_study", help="image folders")
    parser.add_argument("--ignore-gate", action="store_true", help="run rows beyond the premise gate even if it fails")
    parser.add_argument("--report", action="store_true", help="only rewrite the report from the stored results")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "scenes_t2i_study", help="output stem")
    args = parser.parse_args(argv)
    if args.n_samples < 1 or args.batch_size < 1 or min(args.seeds) < 0 or (args.num_prompts or 1) < 1:
        parser.error("--n-samples, --batch-size and --num-prompts must be >= 1, and --seeds >= 0")
    unknown = sorted(set(args.rows or []) - set(ROW))
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}: choose from {', '.join(ROW)}")
    with one_line_errors():
        from gtr.files import write_json
        from gtr.study.scenes import model_id, weights_file
        path = args.out.with_suffix(".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        model = ([f"model.checkpoint={args.checkpoint}"] if args.checkpoint else []) + \
            ([f"model.text_encoder.path={args.text_checkpoint}"] if args.text_checkpoint else []) + args.override
        weights = weights_file("lightgen_scenes", args.checkpoint)
        cfg_scale = args.cfg if args.cfg is not None else _lightgen_scenes_cfg()
        settings = {"n_samples": args.n_samples, "num_prompts": args.num_prompts, "batch_size": args.batch_size,
                    "mode": args.mode, "cfg": cfg_scale, "overrides": args.override}
        study = load_state(path, model_id(weights), settings)
        command = shlex.join(["python", "scripts/scenes_t2i_study.py", *(sys.argv[1:] if argv is None else argv)])
        if not args.report:
            keys = args.rows or rows_of(args.tables)
            gated = [k for k in keys if ROW[k].table == "table2"]
            first = [k for k in keys if k not in gated]
            options = dict(study=study, path=path, images_root=args.images, n_samples=args.n_samples,
                           seeds=sorted(args.seeds), batch_size=args.batch_size, cfg_scale=cfg_scale,
                           device=args.device, mode=args.mode, model_overrides=model, num_prompts=args.num_prompts,
                           command=command)
            measure(first, **options)
            if gated:
                if premise(study["current"])["passed"] or args.ignore_gate:
                    measure(gated, **options)
                else:
                    print("the premise gate has not passed (see the report): the Table 2 rows were not run "
                          "(--tables premise measures it; --ignore-gate runs them anyway)", file=sys.stderr)
        write_json(path, study)
        report(study, args.out.with_suffix(".md"), command)
        print(f"wrote {args.out.with_suffix('.md')}")


def _lightgen_scenes_cfg() -> float:
    from gtr.models.registry import preset
    return preset("lightgen_scenes").config.default_cfg


__all__ = ["scenes", "scenes_t2i", "toy"]
