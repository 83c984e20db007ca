"""Writing small files so that a reader (or a resumed run) never sees half of one: write beside, then rename; and
where the clone is."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent  # the clone, for an editable install (git commit of a run)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to; renamed onto ``path`` when the block succeeds, removed when it
    fails (a full disk leaves no partial file behind)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, data, indent: int | None = 1) -> None:
    write_text(path, json.dumps(data, indent=indent) + "\n")
