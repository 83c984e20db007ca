"""Optional Weights & Biases tracking: off unless the config says ``wandb.enabled=true``; ``wandb.mode`` (or
``$WANDB_MODE`` when unset) picks online, offline or disabled."""
from __future__ import annotations

import os

from omegaconf import OmegaConf

from gtr.errors import require


def start_wandb(cfg, job_type: str):
    """A wandb run holding the resolved config, or None when tracking is off."""
    options = cfg.get("wandb") or {}
    if not options.get("enabled", False):
        return None
    wandb = require("wandb", "track")
    mode = options.get("mode") or os.environ.get("WANDB_MODE") or "online"
    return wandb.init(project=options.get("project", "gtr-mar"), job_type=job_type, mode=mode,
                      config=OmegaConf.to_container(cfg, resolve=True), dir=options.get("dir") or None)
