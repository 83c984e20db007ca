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
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from gtr.errors import one_line_errors

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    from gtr.study.scenes_t2i import ROW, TABLES, load_state, measure, premise, report, rows_of
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument("--images", type=Path, default=REPO / "runs" / "scenes_t2i_study", help="image folders")
    parser.add_argument("--ignore-gate", action="store_true", help="run rows beyond the premise gate even if it fails")
    parser.add_argument("--report", action="store_true", help="only rewrite the report from the stored results")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "scenes_t2i_study", help="output stem")
    args = parser.parse_args()
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
        cfg_scale = args.cfg if args.cfg is not None else _default_cfg()
        settings = {"n_samples": args.n_samples, "num_prompts": args.num_prompts, "batch_size": args.batch_size,
                    "mode": args.mode, "cfg": cfg_scale, "overrides": args.override}
        study = load_state(path, model_id(weights), settings)
        command = shlex.join(["python", "scripts/scenes_t2i_study.py", *sys.argv[1:]])
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


def _default_cfg() -> float:
    from gtr.models.registry import preset
    return preset("lightgen_scenes").config.default_cfg


if __name__ == "__main__":
    main()
