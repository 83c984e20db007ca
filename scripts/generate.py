"""Generate an evaluation set (resumable, any number of processes) and score it with FID/IS.

    python scripts/generate.py model=mar_fmnist sampler=gtr
    torchrun --nproc_per_node 8 scripts/generate.py model=mar_h sampler=gtr_16 diffusion.clip_timestep=950
    python scripts/generate.py -m model=mar_b,mar_l sampler=mar,gtr_16 seed=0,1,2   # Hydra sweep
"""
import sys

import hydra
from omegaconf import DictConfig

from gtr.errors import GtRError
from gtr.generate import generate
from gtr.pipeline import CONFIGS, run_tag


@hydra.main(config_path=str(CONFIGS), config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        record = generate(cfg, sampler_config=run_tag(cfg.sampler.name))  # gtr_16, or gtr_16+lazymar
    except GtRError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if record:
        metrics = record.get("metrics", {})
        print(f"wrote {cfg.output_dir}/results.json" + (f": {metrics}" if metrics else ""))


if __name__ == "__main__":
    main()
