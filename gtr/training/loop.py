"""A small, restartable training loop shared by the MAR, tokenizer and classifier trainers.

Every step's randomness (batch, masks, noise, dropout) comes from generators seeded by (seed, step), and the data
order of each epoch from (seed, epoch), so a run killed at any point and resumed from its last checkpoint continues
exactly as the uninterrupted run would. Checkpoints are written atomically and hold no Python objects (they load
with ``weights_only=True``).
"""
from __future__ import annotations

import copy
import errno
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from gtr.errors import GtRError
from gtr.files import atomic_path
from gtr.weights import read_checkpoint


def cosine_lr(step: int, total: int, warmup: int, base: float, final_fraction: float = 0.0) -> float:
    """Linear warm-up to ``base`` over ``warmup`` steps, then a half cosine down to ``final_fraction * base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass
class StepRandom:
    """The random sources of one training step."""
    numpy: np.random.Generator
    torch: torch.Generator


def step_random(seed: int, step: int) -> StepRandom:
    seq = np.random.SeedSequence([seed, step])
    torch.manual_seed(int(seq.generate_state(1, np.uint64)[0] >> 1))  # dropout and other global draws
    return StepRandom(np.random.default_rng(seq), torch.Generator().manual_seed(int(seq.generate_state(2, np.uint64)[1] >> 1)))


class EpochSampler:
    """Batches of indices, a fresh permutation per epoch seeded by (seed, epoch); batch k of the run is the same
    whenever it is asked for."""

    def __init__(self, size: int, batch_size: int, seed: int):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise GtRError(f"train.batch_size must be an integer >= 1, got {batch_size!r}")
        if batch_size > size:
            raise GtRError(f"batch_size {batch_size} is larger than the dataset ({size}): lower train.batch_size")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.per_epoch = size // batch_size  # the incomplete last batch is dropped
        self._cache: tuple[int, torch.Tensor] | None = None

    def batch(self, step: int) -> torch.Tensor:
        epoch, k = divmod(step, self.per_epoch)
        if self._cache is None or self._cache[0] != epoch:
            gen = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, epoch, 1]).generate_state(1)[0]))
            self._cache = (epoch, torch.randperm(self.size, generator=gen))
        return self._cache[1][k * self.batch_size:(k + 1) * self.batch_size]


class Trainer:
    """Runs ``step_fn(step, random) -> (loss, metrics)`` for ``total_steps`` steps with AdamW, cosine LR, gradient
    clipping, an EMA copy, periodic atomic checkpoints (``<out>/last.pt``), resume, a progress bar and optional
    wandb logging."""

    def __init__(self, model: torch.nn.Module, out_dir: str | os.PathLike, *, total_steps: int, lr: float,
                 warmup_steps: int = 0, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 grad_clip: float | None = None, ema_decay: float | None = None, seed: int = 0,
                 checkpoint_every: int = 200, log_every: int = 50, progress: bool = True, wandb_run: Any = None,
                 description: str = "train", settings: dict | None = None):
        """``settings``: what the run's result depends on (the job's options and seed), saved in every checkpoint
        and checked on resume: a run never continues under other settings than it started with."""
        self.model, self.out = model, Path(out_dir)
        self.settings = dict(settings or {})
        self.total_steps, self.lr, self.warmup = total_steps, lr, warmup_steps
        self.grad_clip, self.ema_decay, self.seed = grad_clip, ema_decay, seed
        self.checkpoint_every, self.log_every = checkpoint_every, log_every
        self.progress, self.wandb_run, self.description = progress, wandb_run, description
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
        self.ema = copy.deepcopy(model).eval().requires_grad_(False) if ema_decay else None
        self.step = 0
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "last.pt"

    def save(self) -> None:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "step": torch.tensor(self.step), "history": json.dumps(self.history),
                 "settings": json.dumps(self.settings, sort_keys=True)}
        if self.ema is not None:
            state["model_ema"] = self.ema.state_dict()
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_path(self.checkpoint_path) as tmp:
                torch.save(state, tmp)
        except RuntimeError as err:  # torch's zip writer reports a failed write (a full disk) as a RuntimeError
            if "write" not in str(err).lower():
                raise
            raise OSError(errno.ENOSPC, f"cannot write the checkpoint ({str(err).splitlines()[0]})",
                          str(self.checkpoint_path)) from None

    def resume(self) -> bool:
        """Continue from ``<out>/last.pt`` if it exists; True when something was loaded."""
        if not self.checkpoint_path.is_file():
            return False
        fix = "delete it to start over, or set resume=false (out_dir=<another folder> keeps it)"
        try:
            state = read_checkpoint(self.checkpoint_path)
        except GtRError as err:
            raise GtRError(f"cannot resume: {str(err).removesuffix('; re-download it')}; {fix}") from None
        saved = json.loads(state["settings"]) if isinstance(state.get("settings"), str) else None
        if saved is not None and saved != self.settings:
            changed = sorted(k for k in set(saved) | set(self.settings) if saved.get(k) != self.settings.get(k))
            what = ", ".join(f"{k}: {saved.get(k)!r} -> {self.settings.get(k)!r}" for k in changed[:3])
            raise GtRError(f"cannot resume {self.checkpoint_path} under other settings ({what}): run it with the "
                           f"settings it started with, or {fix}")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.ema is not None:
                self.ema.load_state_dict(state["model_ema"])
            step, history = int(state["step"]), json.loads(state["history"])
        except (RuntimeError, KeyError, TypeError, ValueError) as err:
            detail = f"no {err}" if isinstance(err, KeyError) else (str(err).strip().splitlines() or [""])[0]
            raise GtRError(f"cannot resume from {self.checkpoint_path} ({detail}; another job's or another size's "
                           f"checkpoint?): {fix}") from None
        self.step, self.history = step, history
        return True

    # ------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _update_ema(self) -> None:
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p.detach(), 1 - self.ema_decay)
        for e, b in zip(self.ema.buffers(), self.model.buffers()):
            e.copy_(b)

    def run(self, step_fn: Callable[[int, StepRandom], tuple[torch.Tensor, dict[str, float]]]) -> None:
        self.model.train()
        running: dict[str, list[float]] = {}
        with tqdm(total=self.total_steps, initial=self.step, desc=self.description, unit="step",
                  disable=not self.progress, dynamic_ncols=True) as bar:
            while self.step < self.total_steps:
                lr = cosine_lr(self.step, self.total_steps, self.warmup, self.lr)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                loss, metrics = step_fn(self.step, step_random(self.seed, self.step))
                if not torch.isfinite(loss):
                    raise GtRError(f"{self.description}: loss became {loss.item()} at step {self.step}; lower "
                                   f"train.lr or resume from {self.checkpoint_path}")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
                self.optimizer.step()
                if self.ema is not None:
                    self._update_ema()
                self.step += 1
                for key, value in {"loss": loss.item(), **metrics}.items():
                    running.setdefault(key, []).append(value)
                if self.step % self.log_every == 0 or self.step == self.total_steps:
                    means = {k: float(np.mean(v)) for k, v in running.items()}
                    running = {}
                    self.history.append({"step": self.step, "lr": lr, **means})
                    bar.set_postfix({k: f"{v:.4g}" for k, v in means.items()})
                    if self.wandb_run is not None:
                        self.wandb_run.log({f"train/{k}": v for k, v in means.items()} | {"train/lr": lr},
                                           step=self.step)
                if self.step % self.checkpoint_every == 0 or self.step == self.total_steps:
                    self.save()
                bar.update(1)
        self.model.eval()

    def final_weights(self) -> dict[str, torch.Tensor]:
        """The weights to ship: the EMA copy when there is one."""
        source = self.ema if self.ema is not None else self.model
        return {k: v.detach().contiguous() for k, v in source.state_dict().items()}
