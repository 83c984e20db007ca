"""A job's output folder: writable before any work starts (:func:`check_writable`), claimed by one run's settings so
that a resume never mixes two runs (:func:`claim_output`, :func:`run_settings`), its images checked
(:func:`image_ok`, :func:`check_complete`) or cleared, and the commit that made them (:func:`git_commit`).
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import torch
from omegaconf import OmegaConf
from PIL import Image

from gtr.errors import GtRError
from gtr.files import REPO_ROOT, write_json
from gtr.jobs.common import cache_settings


def check_writable(folder: Path, key: str = "output_dir") -> None:
    """``folder`` could be made and take a file (probed in it or, when it does not exist yet, in its nearest existing
    ancestor: nothing is created, so a run refused later leaves no empty folder); else one line naming ``key``."""
    folder = Path(folder)
    probe_in = folder
    while not probe_in.exists() and probe_in != probe_in.parent:
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise GtRError(f"cannot write to output folder {folder}: {probe_in} is a file, not a folder; set {key}=... "
                       "to a writable folder")
    try:
        with tempfile.NamedTemporaryFile(dir=probe_in, prefix=".write_test"):
            pass
    except OSError as err:
        raise GtRError(f"cannot write to output folder {folder} ({err.strerror}): set {key}=... to a writable "
                       f"folder") from None


def claim_output(out: Path, settings: dict, rank: int, folders: Iterable[Path] = ()) -> None:
    """Resume only what these settings made: ``<out>/run.json`` records what the folder's images are (model,
    resolved sampler, seed, precision, counts); the first run writes it and a run with other settings stops. Once
    claimed, ``out`` and ``folders`` are made (every rank makes them: none waits for another)."""
    path = out / "run.json"
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise GtRError(f"{path} is not the JSON record a run writes (cut short or edited): delete {out} to start "
                           "over, or set output_dir=<another folder>") from None
        before, now = _decisive(stored), _decisive(settings)
        for key in RESUME_KEYS:  # folders written before these were recorded are compared without them
            if key not in before:
                now.pop(key, None)
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        if changed:
            raise GtRError(f"{out} holds images made with other settings ({', '.join(changed)} differ): set "
                           f"output_dir=<another folder>, or delete {out} to start over")
    elif rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_json(path, settings)
    for folder in (out, *folders):
        folder.mkdir(parents=True, exist_ok=True)


# The model-config keys that decide a run's images (its name, title, demo grid, metrics do not; CFG and step defaults
# are already resolved into the sampler's options).
MODEL_KEYS_OF_IMAGES = ("preset", "checkpoint", "ema", "random_init", "init_seed", "hparams", "tokenizer",
                        "text_encoder")


# Settings that change some images' last bits (a batch's size changes matmul blocking; compiled kernels round
# otherwise than eager ones; a GPU otherwise than a CPU): a resumed folder must have been made under the same ones.
RESUME_KEYS = ("batch_size", "mode", "device_type")


def _decisive(settings: dict) -> dict:
    """Run settings as the guard compares them (older records may hold more model keys)."""
    model = settings.get("model")
    if not isinstance(model, dict):
        return dict(settings)
    return {**settings, "model": {k: model.get(k) for k in MODEL_KEYS_OF_IMAGES}}


def run_settings(cfg, device: torch.device | None = None, **counts) -> dict:
    """What decides a run's images: the model, sampler, seed, precision, ..., and (for resumable jobs, given
    ``device``) the batch size, executor mode and device type, which can change an image's last bits; not the world
    size, which changes none."""
    model = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k != "metrics"}
    exact = {} if device is None else {"batch_size": cfg.batch_size, "mode": cfg.mode, "device_type": device.type}
    return {"model": model, "sampler": OmegaConf.to_container(cfg.sampler, resolve=True), "seed": cfg.seed,
            "precision": cfg.precision, "diffusion": OmegaConf.to_container(cfg.diffusion, resolve=True),
            **cache_settings(cfg), **exact, **counts}


def clear_images(folder: Path) -> None:
    """Remove a previous run's numbered images, so that a used folder holds only the new run's."""
    for stale in folder.glob("[0-9][0-9][0-9][0-9][0-9].png"):
        stale.unlink()


def image_ok(path: Path, size: int | None = None) -> bool:
    """Whether a PNG exists, fully decodes, and is what this run writes: 8-bit RGB (``size`` x ``size`` when given).
    Anything else in its place (a greyscale or resized copy, say) is redrawn rather than packed and scored."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.mode == "RGB" and (size is None or im.size == (size, size))
    except (OSError, SyntaxError, ValueError):
        return False


def check_complete(num_images: int, path_of: Callable[[int], Path]) -> None:
    """Every rank decoded its pre-existing images before skipping them and writes new ones atomically, so existence
    is completeness here."""
    missing = [i for i in range(num_images) if not path_of(i).is_file()]
    if missing:
        raise GtRError(f"{len(missing)} images missing after generation (first: {path_of(missing[0])}): re-run the "
                       f"same command to resume")


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
