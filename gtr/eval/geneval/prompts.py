"""GenEval's prompts and the generation layout its evaluator reads.

Prompts: ``prompts/evaluation_metadata.jsonl`` of djghosh13/geneval (553 JSON lines: ``tag``, ``prompt``,
``include``, and ``exclude`` on counting prompts), from a local path or downloaded once when online.

Layout (GenEval README; the evaluator visits all-digit folders and ``\\d+.png`` files)::

    <out>/00000/metadata.jsonl      # the untouched JSON line of prompt 0, as one object
    <out>/00000/samples/0000.png    # ... 0003.png: n_samples images per prompt

LightGen's own GenEval script wraps every metadata string in a list (DataLoader collation), which the official
evaluator cannot read (docs/lightgen_geneval.md Sec. 2.3); here the record is written as read.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from gtr.errors import GtRError
from gtr.files import write_json
from gtr.eval.geneval.rules import COLORS, OBJECT_NAMES
from gtr.weights import WeightFile, resolve

RELATIONS = ("left of", "right of", "above", "below")
TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")  # GenEval's six tasks
METADATA = WeightFile(
    "GenEval prompts", "geneval/evaluation_metadata.jsonl",  # under weights.root
    "https://raw.githubusercontent.com/djghosh13/geneval/af4902f24d3ca90ebbb446dd9891a59e0f82725f/prompts/"
    "evaluation_metadata.jsonl", 0, "geneval.prompts", kind="file",
    sha256="5c48e0813e812e3c373fa5c8ed07a8f0a483be30272b4427b0559c8048e67c13")


def resolve_metadata(path: str | os.PathLike | None, root: str | os.PathLike, download: bool = True) -> Path:
    """``path``, else ``<root>/geneval/evaluation_metadata.jsonl``, downloaded there (and checked against the
    official file's SHA-256) when missing and allowed."""
    return resolve(METADATA, path, root, download)


def read_metadata(path: str | os.PathLike, classes: tuple[str, ...] = OBJECT_NAMES,
                  colors: tuple[str, ...] = COLORS) -> list[dict]:
    """The prompt records of a metadata file, one per non-empty line, checked against the detector's vocabulary
    (``classes`` and ``colors``: GenEval's 80 COCO names and 10 colours by default)."""
    records = []
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as err:
        raise GtRError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}): give GenEval's "
                       "evaluation_metadata.jsonl, saved as UTF-8") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise GtRError(f"{path}:{number} is not JSON ({err.msg}): give GenEval's "
                           f"evaluation_metadata.jsonl format, one JSON object per line") from None
        problem = _problem(record, classes, colors)
        if problem:
            raise GtRError(f"{path}:{number}: {problem}; GenEval's evaluator could not score this prompt")
        records.append(record)
    if not records:
        raise GtRError(f"{path} holds no prompts: give GenEval's evaluation_metadata.jsonl")
    return records


def _clauses(value) -> bool:
    return isinstance(value, list) and all(isinstance(c, dict) for c in value)


def _problem(record, classes: tuple[str, ...], colors: tuple[str, ...]) -> str | None:
    if not isinstance(record, dict) or not {"tag", "prompt", "include"} <= record.keys():
        return "a record needs tag, prompt and include"
    if not isinstance(record["prompt"], str) or not record["prompt"].strip():
        return f"prompt must be a non-empty string, got {record['prompt']!r}"
    if record["tag"] not in TAGS:
        return f"unknown tag {record['tag']!r}: GenEval's tasks are {', '.join(TAGS)}"
    if not _clauses(record["include"]) or not record["include"] or not _clauses(record.get("exclude", [])):
        return 'include (and exclude) must be lists of objects like {"class": "dog", "count": 1}'
    clauses = record["include"] + record.get("exclude", [])
    for clause in clauses:
        if not isinstance(clause.get("class"), str) or clause["class"] not in classes:
            known = "the detector's 80 COCO classes, GenEval's names" if classes == OBJECT_NAMES else \
                f"the detector's classes: {', '.join(classes)}"
            return f"unknown class {clause.get('class')!r} ({known})"
        count = clause.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            return f"count of {clause['class']!r} must be a positive integer"
        if "color" in clause and (not isinstance(clause["color"], str) or clause["color"] not in colors):
            return f"unknown colour {clause['color']!r} (one of {', '.join(colors)})"
    for index, clause in enumerate(record["include"]):
        position = clause.get("position")
        if position is not None and not (isinstance(position, list) and len(position) == 2
                                         and position[0] in RELATIONS and isinstance(position[1], int)
                                         and 0 <= position[1] < index):
            return f"position {position!r} must be [one of {', '.join(RELATIONS)}, index of an earlier clause]"
    return None


def prompt_folder(out: str | os.PathLike, index: int) -> Path:
    return Path(out) / f"{index:05d}"


def image_path(out: str | os.PathLike, index: int, sample: int) -> Path:
    return prompt_folder(out, index) / "samples" / f"{sample:04d}.png"


def write_metadata(out: str | os.PathLike, index: int, record: dict) -> None:
    """``<out>/<index>/metadata.jsonl``: the prompt's record as one JSON object, written atomically."""
    folder = prompt_folder(out, index)
    (folder / "samples").mkdir(parents=True, exist_ok=True)
    write_json(folder / "metadata.jsonl", record, indent=None)
