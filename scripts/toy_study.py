"""The paper's claims tested on the project's own Fashion-MNIST MARs (results/toy_study*).

Usage and options: ``python scripts/toy_study.py --help`` (the command line is :func:`gtr.study.cli.toy`).
"""
from gtr.study.cli import toy

if __name__ == "__main__":
    toy()
