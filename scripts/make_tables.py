"""Regenerate results/table1.md ... table5.md (and a speed-quality plot) from what has been measured, each cell beside
the paper's value and labelled by where it comes from (the logic: gtr/eval/tables.py).

    python scripts/make_tables.py [--runs 'generated/*/results.json' 'multirun/**/results.json']
"""
from gtr.cli import make_tables

if __name__ == "__main__":
    make_tables()
