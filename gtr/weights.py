"""Finding and safely reading weight files.

Every weight file goes through :func:`resolve`: an explicit path, else the official folder layout under a
configurable root (``pretrained_models/mar/mar_huge/checkpoint-last.pth``, ``pretrained_models/vae/kl16.ckpt``),
else a download from the official source when online (progress bar, atomic rename). When none works, one line
names the file, where to get it and the config key to set.

Files are read with ``torch.load(..., weights_only=True)`` (plus an allow-list of what the official training
scripts store besides tensors) or as safetensors; arbitrary pickled objects are never executed.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import http.client
import hashlib
import os
import pickle
import re
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from tqdm.auto import tqdm

from gtr.errors import GtRError

DEFAULT_ROOT = "pretrained_models"
ASSETS = Path(__file__).resolve().parent / "assets"  # weights the project trains itself and ships in the package
_DROPBOX = "https://www.dropbox.com/scl/fi"


@dataclass(frozen=True)
class WeightFile:
    name: str  # human name, e.g. "MAR-H"
    relpath: str  # official layout under the weights root
    url: str | None  # official download (dl=1: Dropbox's direct-download form)
    size_mib: int
    config_key: str  # the Hydra key that takes an explicit path
    bundled: str | None = None  # file name under gtr/assets when the package ships it
    kind: str = "weights"  # what the file is, in messages
    sha256: str | None = None  # checked after a download when given
    git_sha1: str | None = None  # or its git blob hash (for files served from a git repository)


# Files other than the models (tokenizers, detectors, statistics); the models' own files are in gtr.models.registry.
WEIGHTS: dict[str, WeightFile] = {
    "kl16": WeightFile("KL-16 VAE", "vae/kl16.ckpt",
                       f"{_DROPBOX}/hhmuvaiacrarfg28qxhwz/kl16.ckpt?rlkey=l44xipsezc8atcffdp4q7mwmh&dl=1",
                       254, "model.tokenizer.checkpoint"),
    "sd3_vae": WeightFile("SD3 VAE", "vae/sd3_vae.safetensors", None, 160, "model.tokenizer.checkpoint"),
    # GenEval's detector: mmdetection 2.x Mask2Former Swin-S (COCO instance), as the official evaluator downloads it
    # (evaluation/download_models.sh); converted to transformers' Mask2Former by gtr.eval.geneval.convert.
    "geneval_mask2former": WeightFile(
        "GenEval Mask2Former (mmdet Swin-S)", "geneval/mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco.pth",
        "https://download.openmmlab.com/mmdetection/v2.0/mask2former/mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco/"
        "mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco_20220504_001756-743b7d99.pth", 265, "geneval.detector_path"),
    # Trained by this project on Fashion-MNIST (scripts/train.py) and shipped with the package.
    "fmnist_vae": WeightFile("Fashion-MNIST tokenizer", "fmnist/fmnist_vae.safetensors", None, 0,
                             "model.tokenizer.checkpoint", bundled="fmnist_vae.safetensors"),
    "fmnist16_vae": WeightFile("Fashion-MNIST 16x16-token tokenizer", "fmnist/fmnist16_vae.safetensors", None, 0,
                               "model.tokenizer.checkpoint", bundled="fmnist16_vae.safetensors"),
    "scenes_vae": WeightFile("scenes tokenizer", "scenes/scenes_vae.safetensors", None, 0,
                             "model.tokenizer.checkpoint", bundled="scenes_vae.safetensors"),
    # scenes_vae fine-tuned on the text-to-image scenes, whose objects differ in shape and colour within an image
    "scenes_t2i_vae": WeightFile("text-to-image scenes tokenizer", "scenes/scenes_t2i_vae.safetensors", None, 0,
                                 "model.tokenizer.checkpoint", bundled="scenes_t2i_vae.safetensors"),
    # FID reference statistics of the ADM ImageNet 256 batch, as the official MAR evaluation uses them (mu, sigma);
    # served from the MAR repository, verified by its git blob hash there.
    "adm_in256_stats": WeightFile("ADM ImageNet-256 FID statistics", "fid_stats/adm_in256_stats.npz",
                                  "https://github.com/LTH14/mar/raw/main/fid_stats/adm_in256_stats.npz", 33,
                                  "metrics.reference", kind="statistics",
                                  git_sha1="1da4c17607fe959d54999fd098105649a0c05e15"),
    "scenes_classifier": WeightFile("scenes classifier", "scenes/scenes_classifier.safetensors", None, 0,
                                    "metrics.classifier", bundled="scenes_classifier.safetensors"),
    "scenes_text": WeightFile("scenes text encoder", "scenes/scenes_text.safetensors", None, 0,
                              "model.text_encoder.path", bundled="scenes_text.safetensors"),
    "fmnist_classifier": WeightFile("Fashion-MNIST classifier", "fmnist/fmnist_classifier.safetensors", None, 0,
                                    "metrics.classifier", bundled="fmnist_classifier.safetensors"),
}


def offline() -> bool:
    return any(os.environ.get(v, "0").lower() in ("1", "true", "yes") for v in ("GTR_OFFLINE", "HF_HUB_OFFLINE"))


def resolve(file: WeightFile, path: str | os.PathLike | None = None, root: str | os.PathLike = DEFAULT_ROOT,
            download: bool = True) -> Path:
    """The local path of a weight file: ``path``, else the copy shipped in the package, else the official layout
    under ``root``, downloading it there when allowed and possible."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise GtRError(f"{file.name} {file.kind}: {path} {what}; fix {file.config_key}=<the file> or set it to "
                           f"null to use {Path(root) / file.relpath}")
        return path
    if file.bundled and (ASSETS / file.bundled).is_file():
        return ASSETS / file.bundled
    local = Path(root).expanduser() / file.relpath
    if local.is_file():
        return local
    reason = "downloads disabled"
    if download and file.url and not offline():
        try:
            download_file(file.url, local, desc=file.name, check=lambda part: checksum_ok(part, file))
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            reason = f"download failed: {getattr(err, 'reason', err) or type(err).__name__}; re-running resumes it"
        except ChecksumError:
            raise GtRError(f"the downloaded {file.name} {file.kind} is not the expected file (its checksum differs; "
                           f"the partial file was removed): re-run, or download {file.url} by hand to {local}") from None
        else:
            return local
    size = f" (~{file.size_mib} MiB)" if file.size_mib else ""
    where = f"download {file.url}{size} to {local}" if file.url else f"place it at {local}"
    raise GtRError(f"{file.name} {file.kind} not found ({reason}): {where}, or set {file.config_key}=/path/to/"
                   f"{Path(file.relpath).name} (weights root: weights.root={Path(root)})")


class ChecksumError(Exception):
    """A completed download is not the expected file."""


def _hexdigest(path: Path, digest) -> str:
    """``digest`` (a hashlib object, maybe already fed a header) updated with the file's bytes, streamed."""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """The hash git gives a file's content (``git hash-object``): SHA-1 of ``blob <size>\\0`` + the bytes."""
    return _hexdigest(path, hashlib.sha1(f"blob {path.stat().st_size}\0".encode()))


def checksum_ok(path: Path, file: WeightFile) -> bool:
    """Whether ``path`` matches the file's known checksums (True when none is known)."""
    if file.sha256 and _hexdigest(path, hashlib.sha256()) != file.sha256:
        return False
    return not file.git_sha1 or git_blob_sha1(path) == file.git_sha1


def download_file(url: str, dest: Path, desc: str = "", timeout: float = 30.0,
                  check: Callable[[Path], bool] | None = None) -> None:
    """Stream ``url`` to ``dest`` with a progress bar, resuming a partial download left by an earlier attempt (HTTP
    Range; from the start when the server does not support it). The file appears only once complete and, with
    ``check``, verified (atomic rename); a complete file that fails the check is removed (:class:`ChecksumError`).
    Processes that download the same file at once take turns on one lock."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    with open(part, "ab") as out:
        fcntl.flock(out, fcntl.LOCK_EX)  # another process downloading it: wait, then find the file complete
        try:
            if dest.is_file():
                return
            have = out.tell()
            headers = {"User-Agent": "Wget/1.16 (linux-gnu)", **({"Range": f"bytes={have}-"} if have else {})}
            try:
                response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
            except urllib.error.HTTPError as err:
                if err.code != 416:  # 416: the partial file is already complete
                    raise
                response = None
            if response is not None:
                with response:
                    if have and response.status != 206:  # the server sent the whole file: start over
                        out.truncate(0)
                        have = 0
                    length = int(response.headers.get("Content-Length") or 0)
                    with tqdm(total=have + length if length else None, initial=have, unit="B", unit_scale=True,
                              desc=f"downloading {desc or dest.name}") as bar:
                        while chunk := response.read(1 << 20):
                            out.write(chunk)
                            bar.update(len(chunk))
                    if length and out.tell() < have + length:
                        raise OSError(f"connection closed after {out.tell()} of {have + length} bytes")
            out.flush()
            os.fsync(out.fileno())
            if check is not None and not check(part):
                part.unlink(missing_ok=True)
                raise ChecksumError(str(dest))
            os.replace(part, dest)
        finally:
            fcntl.flock(out, fcntl.LOCK_UN)


# What the official training scripts pickle besides tensors (``args`` is an argparse.Namespace).
SAFE_GLOBALS = [argparse.Namespace]


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The top-level dict of a ``.pth``/``.ckpt``/``.safetensors`` file, without executing pickled code."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(path)
        except (SafetensorError, OSError) as err:
            raise GtRError(f"{path} is not a readable safetensors file ({err}); re-download or re-export it") from None
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as err:
                if "mmap" not in str(err):
                    raise
                obj = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except pickle.UnpicklingError as err:
        # torch < 2.14: "Unsupported global: GLOBAL os.system"; 2.14: "unsupported GLOBAL posix.system whose ..."
        blocked = re.search(r"unsupported global:?\s+(?:GLOBAL\s+)?(\S+)", str(err), re.IGNORECASE)
        if blocked is None:
            raise GtRError(f"{path} is truncated or not a PyTorch checkpoint; re-download it") from None
        raise GtRError(f"{path} holds Python objects that are not loaded for safety ({blocked[1]}); export its "
                       f"tensors to a plain state dict or a .safetensors file") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError) as err:
        # OSError: torch's zip reader fails with EINVAL on a zip cut under ~64 KB; KeyError: the legacy reader on a
        # file that is not a pickle at all (text, say).
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GtRError(f"{path} is truncated or not a PyTorch checkpoint ({first}); re-download it") from None
    if not isinstance(obj, dict):
        raise GtRError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict")
    return obj


def select_state_dict(checkpoint: dict, key: str | None, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``checkpoint[key]`` (e.g. ``model_ema``); a bare state dict is returned as is."""
    if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return checkpoint
    if key not in checkpoint or not isinstance(checkpoint[key], dict):
        available = ", ".join(k for k, v in checkpoint.items() if isinstance(v, dict)) or "none"
        raise GtRError(f"{path} has no state dict under {key!r} (state dicts found: {available}); "
                       f"choose another with the checkpoint key option")
    return checkpoint[key]


def describe_mismatch(expected: dict[str, torch.Size], got: dict[str, torch.Tensor], limit: int = 3) -> str:
    """A short account of how a state dict differs from a model's: missing, unexpected and reshaped keys."""
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    reshaped = [f"{k} {tuple(got[k].shape)} vs {tuple(expected[k])}" for k in expected
                if k in got and tuple(got[k].shape) != tuple(expected[k])]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", reshaped)):
        if items:
            shown = ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")
            parts.append(f"{len(items)} {label} ({shown})")
    return "; ".join(parts)


def load_into(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], path, what: str,
              hint: str = "") -> torch.nn.Module:
    """Strictly load ``state_dict`` into ``model`` (which may live on the meta device: tensors are assigned, not
    copied), or raise one line saying what does not fit and, via ``hint``, what the file probably is."""
    expected = {k: v.shape for k, v in model.state_dict().items()}
    problem = describe_mismatch(expected, state_dict)
    if problem:
        raise GtRError(f"{path} does not fit {what}: {problem}{hint}")
    own = model.state_dict()
    integral = [f"{k} ({str(v.dtype).replace('torch.', '')})" for k, v in state_dict.items()
                if own[k].is_floating_point() and not v.is_floating_point()]
    if integral:
        raise GtRError(f"{path} holds non-float weights ({', '.join(integral[:3])}"
                       f"{', ...' if len(integral) > 3 else ''}): not a {what} checkpoint as trained; re-export it")
    state_dict = {k: v.float() if own[k].is_floating_point() and v.dtype != torch.float32 else v
                  for k, v in state_dict.items()}
    model.load_state_dict(state_dict, strict=True, assign=True)
    return model


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Random initialisation draws from torch's global generator (as the official code's), here seeded with ``seed``
    inside a fork: the caller's global random state is the same after as before (``seed=None``: the global stream
    as it is, consumed)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
