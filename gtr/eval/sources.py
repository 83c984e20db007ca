"""Where images to score come from: a folder of PNG/JPEG files or an ADM-layout ``.npz`` (``arr_0``: uint8
[N, H, W, 3], what the official MAR and guided-diffusion evaluations read), streamed in uint8 [B, H, W, 3] batches so
that memory does not grow with their number (an ``.npz`` is read row block by row block from inside the archive,
never unpickled)."""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from gtr.errors import GtRError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def folder_images(folder: Path, minimum: int = 1) -> list[Path]:
    """The .png/.jpg images of a folder, sorted by name (at least ``minimum`` of them)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < minimum:
        raise GtRError(f"{folder} holds no .png/.jpg images")
    return files


def png_batches(paths: Sequence[Path], batch_size: int = 200) -> Iterator[torch.Tensor]:
    """The images of ``paths`` as RGB uint8 batches [B, H, W, 3]."""
    for start in range(0, len(paths), batch_size):
        yield torch.from_numpy(np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths[start:start + batch_size]]))


def read_header(f) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) of an .npy stream, leaving it at the first data byte."""
    major, _ = np.lib.format.read_magic(f)
    reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    return reader(f)


def npz_array_header(archive: zipfile.ZipFile, path: Path) -> tuple[zipfile.ZipInfo, tuple]:
    """The ``arr_0`` member of an ADM .npz and its shape, checked to be uint8 [N, H, W, 3]."""
    names = archive.namelist()
    if "arr_0.npy" not in names:
        raise GtRError(f"{path} has no arr_0 (the ADM sample layout): it holds {', '.join(n[:-4] for n in names)}")
    info = archive.getinfo("arr_0.npy")
    with archive.open(info) as f:
        shape, fortran, dtype = read_header(f)
    if dtype != np.uint8 or len(shape) != 4 or shape[-1] != 3 or fortran:
        raise GtRError(f"{path}: arr_0 must be uint8 [N, H, W, 3], got {dtype} {list(shape)}")
    return info, shape


def npz_batches(path: Path, batch_size: int = 200) -> tuple[int, Iterator[torch.Tensor]]:
    """The number of images of an ADM ``.npz`` and its images in batches, read from the archive a block at a time
    (never the whole array: 50k 256-px images are 9.8 GB). Never unpickles."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise GtRError(f"{path} is not a readable .npz ({err})") from err
    info, shape = npz_array_header(archive, path)
    row = int(np.prod(shape[1:]))

    def batches() -> Iterator[torch.Tensor]:
        with archive, archive.open(info) as f:
            read_header(f)
            for start in range(0, shape[0], batch_size):
                count = min(batch_size, shape[0] - start)
                data = f.read(count * row)
                if len(data) != count * row:
                    raise GtRError(f"{path} is truncated: re-create it")
                yield torch.from_numpy(np.frombuffer(data, np.uint8).reshape(count, *shape[1:]).copy())

    return shape[0], batches()


def image_source(path: Path, batch_size: int = 200) -> tuple[int, Iterator[torch.Tensor]]:
    """(number of images, their batches) of a folder of images or an ADM ``.npz``."""
    if path.is_dir():
        files = folder_images(path)
        return len(files), png_batches(files, batch_size)
    if path.suffix == ".npz" and path.is_file():
        return npz_batches(path, batch_size)
    raise GtRError(f"{path} is neither a folder of images nor an .npz of samples")
