"""Regenerate results/table1.md ... table5.md (and a speed-quality plot) from what has been measured, each cell beside
the paper's value and labelled by where it comes from (the logic: gtr/eval/tables.py).

    python scripts/make_tables.py [--runs 'generated/*/results.json' 'multirun/**/results.json']
"""
from __future__ import annotations

import argparse
from pathlib import Path

from gtr.errors import one_line_errors
from gtr.eval.tables import RESULTS, write_tables
from gtr.files import REPO_ROOT


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=[str(REPO_ROOT / "generated" / "*" / "results.json"),
                                                      str(REPO_ROOT / "multirun" / "**" / "results.json"),
                                                      str(RESULTS / "runs" / "*.json")])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with one_line_errors(args.out):
        print(write_tables(args.runs, args.out))


if __name__ == "__main__":
    main()
