"""Does GtR hold? The paper's Tables 1, 3, 4 and 5 decided on the scenes testbed (results/scenes_study.*).

Usage and options: ``python scripts/scenes_study.py --help`` (the command line is :func:`gtr.study.cli.scenes`).
"""
from gtr.study.cli import scenes

if __name__ == "__main__":
    scenes()
