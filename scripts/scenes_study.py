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
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from gtr.errors import one_line_errors

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    from gtr.study.scenes import (GRID_ROWS, PREMISE, ROW, TABLES, figure3, load_state, measure, model_id, premise,
                                  rows_of, sample_grid, weights_file)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument("--out", type=Path, default=REPO / "results" / "scenes_study", help="output stem")
    args = parser.parse_args()
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
            command = shlex.join(["python", "scripts/scenes_study.py", *sys.argv[1:]])
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


if __name__ == "__main__":
    main()
