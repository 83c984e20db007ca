"""Train the project's own Fashion-MNIST networks: ``python scripts/train.py train=tokenizer|mar|classifier``.

Resumable (re-run the same command after a kill), progress bar, optional wandb (``wandb.enabled=true``).
"""
import sys

import hydra
from omegaconf import DictConfig

from gtr.errors import GtRError
from gtr.pipeline import CONFIGS
from gtr.tracking import start_wandb
from gtr.training.jobs import JOBS


@hydra.main(config_path=str(CONFIGS), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        if cfg.train.job not in JOBS:
            raise GtRError(f"unknown training job {cfg.train.job!r}: choose train=tokenizer, mar or classifier")
        run = start_wandb(cfg, job_type=f"train-{cfg.train.job}")
        path = JOBS[cfg.train.job](cfg, run)
        if run is not None:
            run.finish()
    except GtRError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
