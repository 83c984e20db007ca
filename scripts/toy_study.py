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
from __future__ import annotations

import argparse
from pathlib import Path

from gtr.errors import one_line_errors
from gtr.study.toy import TESTBEDS, run

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    args = parser.parse_args()
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
            timing_passes=args.timing_passes, data_root=args.data_root, out=args.out or REPO / "results" / bed.stem,
            command=command)


if __name__ == "__main__":
    main()
