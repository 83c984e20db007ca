"""Fashion-MNIST (Xiao et al., 2017; MIT licence): 70,000 labelled 28x28 grey-scale images of 10 clothing classes.

The project's embedded default model is trained on it. The standard gzip IDX files are found, in order, in an
explicit folder, ``$GTR_FASHION_MNIST``, Debian's ``dataset-fashion-mnist`` package
(``/usr/share/datasets/fashion-mnist``), or the download cache (``~/.cache/gtr/fashion-mnist``, filled from the
official mirror when online).
"""
from __future__ import annotations

import gzip
import http.client
import os
import urllib.error
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from gtr.errors import GtRError
from gtr.weights import download_file, offline

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gtr" / "fashion-mnist"
MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (gzip or plain) as a numpy array of its stored shape (unsigned bytes only)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise GtRError(f"{path} is not a readable IDX file ({err}); delete it and fetch it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise GtRError(f"{path} is not an unsigned-byte IDX file; use the standard Fashion-MNIST files")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(shape)):
        raise GtRError(f"{path} is truncated ({len(raw) - offset} of {int(np.prod(shape))} bytes); fetch it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def find_root(root: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The folder holding the four gzip IDX files, downloading them into the cache when allowed."""
    needed = [name for pair in FILES.values() for name in pair]

    def complete(folder: Path) -> bool:
        return all((folder / name).is_file() for name in needed)

    if root is not None:
        root = Path(root).expanduser()
        if not complete(root):
            raise GtRError(f"{root} does not hold the Fashion-MNIST files ({', '.join(needed)}): fix data.root=...")
        return root
    candidates = [Path(p) for p in [os.environ.get("GTR_FASHION_MNIST")] if p] + [DEBIAN_DIR, CACHE_DIR]
    for folder in candidates:
        if complete(folder):
            return folder
    if download and not offline():
        try:
            for name in needed:
                if not (CACHE_DIR / name).is_file():
                    download_file(MIRROR + name, CACHE_DIR / name, desc=name)
            return CACHE_DIR
        except (urllib.error.URLError, OSError, http.client.HTTPException):
            pass  # a partial file stays for the next attempt to resume
    raise GtRError("Fashion-MNIST not found: `apt-get install dataset-fashion-mnist`, or set data.root=<folder with "
                   f"the 4 IDX .gz files> (or $GTR_FASHION_MNIST), or go online to download them into {CACHE_DIR}")


class FashionMNIST(Dataset):
    """(image, label) pairs: images float [1, 28, 28] in [-1, 1] (``normalize=True``) or uint8 [28, 28]."""

    def __init__(self, split: str = "train", root: str | os.PathLike | None = None, download: bool = True,
                 normalize: bool = True):
        if split not in FILES:
            raise GtRError(f"unknown Fashion-MNIST split {split!r}: use train or test")
        folder = find_root(root, download)
        images, labels = (read_idx(folder / name) for name in FILES[split])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise GtRError(f"{folder}: images {images.shape} and labels {labels.shape} do not match")
        self.root, self.split, self.normalize = folder, split, normalize
        self.images = torch.from_numpy(images.copy())
        self.labels = torch.from_numpy(labels.astype(np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return (to_model_range(self.images[index]) if self.normalize else self.images[index]), self.labels[index]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images [N, 1, 28, 28] in [-1, 1] and labels [N], for in-memory training loops."""
        return to_model_range(self.images), self.labels


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [..., H, W] -> float [..., 1, H, W] in [-1, 1]."""
    return (images.float() / 127.5 - 1).unsqueeze(-3)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Float images [N, 1, 28, 28] -> [N, 1, size, size], bilinear (antialiased when shrinking). Resizing, not
    padding, keeps the garment filling the frame as in the original; the 16x16-token testbed trains at 32x32."""
    if images.shape[-1] == size:
        return images
    out = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False,
                                          antialias=size < images.shape[-1])
    return out.clamp(-1, 1) if images.is_floating_point() else out.round().clamp(0, 255).to(images.dtype)


def write_idx(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write an unsigned-byte array as a gzip IDX file (used to make the committed test subset)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(header + array.tobytes())
