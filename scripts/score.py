"""Score images made anywhere, with no generator loaded: FID/IS of a folder or an ADM ``.npz`` (``arr_0``), or write
the FID statistics of any folder once.

    python scripts/score.py samples/mar_b_gtr_16_seed0/images --reference adm_in256      # ImageNet 256 (official stats)
    python scripts/score.py samples.npz --reference my_stats.npz
    python scripts/score.py my_reference_images/ --save-stats my_stats.npz                # statistics only
    python scripts/score.py images/ --extractor fmnist --reference fashion_mnist:test   # Fashion-MNIST analogues

Prints the scores and, with --out, writes them as JSON. The logic lives in :mod:`gtr.jobs.score`.
"""
from gtr.cli import score

if __name__ == "__main__":
    score()
