"""Table 2 tested on the text-to-image scenes (results/scenes_t2i_study.*).

Usage and options: ``python scripts/scenes_t2i_study.py --help`` (the command line is :func:`gtr.study.cli.scenes_t2i`).
"""
from gtr.study.cli import scenes_t2i

if __name__ == "__main__":
    scenes_t2i()
