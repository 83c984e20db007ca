"""Sample class-conditional images with a MAR model and a named sampler; writes PNGs and a labelled grid.

    python scripts/sample.py                                  # tiny model, CPU, seconds
    python scripts/sample.py model=mar_h sampler=mar sampler.num_iter=256 batch_size=64
"""
import hydra

from gtr.pipeline import main


@hydra.main(config_path="../configs", config_name="sample", version_base="1.3")
def run(cfg) -> None:
    main(cfg)


if __name__ == "__main__":
    run()
