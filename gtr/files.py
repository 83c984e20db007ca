"""Writing small files so that a reader (or a resumed run) never sees half of one: write beside, then rename."""
from __future__ import annotations

import json
import os
from pathlib import Path


def write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, data, indent: int | None = 1) -> None:
    write_text(path, json.dumps(data, indent=indent) + "\n")
