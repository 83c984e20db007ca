"""Sample class-conditional images with a MAR model and a named sampler; writes PNGs and a labelled grid.

    python scripts/sample.py                                  # tiny model, CPU, seconds
    python scripts/sample.py model=mar_h sampler=mar sampler.num_iter=256 batch_size=64
"""
from gtr.cli import sample

if __name__ == "__main__":
    sample()
