"""Score a GenEval folder (the official layout) image by image, as ``evaluation/evaluate_images.py`` does, into
its ``results.jsonl`` format (filename, tag, prompt, correct, reason, metadata, details), then summarise.

Resumable: each scored prompt folder is appended to a partial file of this scorer (flushed), and a restart with the
same detector, CLIP and thresholds skips the images already there; ``results.jsonl`` appears only once every image
is scored.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path

from PIL import Image, ImageOps
from tqdm.auto import tqdm

from gtr.errors import GtRError
from gtr.files import write_text
from gtr.eval.geneval.colors import ColorClassifier
from gtr.eval.geneval.detector import Detector
from gtr.eval.geneval.rules import Thresholds, evaluate, select_objects

IMAGE_NAME = re.compile(r"\d+\.png")  # the official evaluator's filter (re.match: a prefix match)


def prompt_folders(folder: Path) -> list[Path]:
    """The all-digit subfolders the official evaluator visits, in numeric order."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def images_of(prompt_folder: Path) -> list[Path]:
    samples = prompt_folder / "samples"
    return sorted(p for p in samples.iterdir() if p.is_file() and IMAGE_NAME.match(p.name)) \
        if samples.is_dir() else []


def score_image(path: Path, metadata: dict, detector: Detector, colors: ColorClassifier,
                thresholds: Thresholds = Thresholds()) -> dict:
    """One row of ``results.jsonl``."""
    image = ImageOps.exif_transpose(Image.open(path))
    objects = select_objects(detector(image), detector.classnames, metadata["tag"], thresholds)
    correct, reason = evaluate(objects, metadata, lambda found, name: colors(image, found, name), thresholds)
    return {"filename": str(path), "tag": metadata["tag"], "prompt": metadata["prompt"], "correct": correct,
            "reason": reason, "metadata": json.dumps(metadata),
            "details": json.dumps({name: [obj.box.tolist() for obj in found] for name, found in objects.items()})}


def score_folder(folder: str | os.PathLike, detector: Detector, colors: ColorClassifier,
                 thresholds: Thresholds = Thresholds(), out: str | os.PathLike | None = None,
                 progress: bool = True, images_per_prompt: int | None = None) -> list[dict]:
    """Score every image of ``folder``; writes ``out`` (default ``<folder>/results.jsonl``) and returns its rows in
    prompt then image order. ``images_per_prompt``: every prompt folder must hold that many images (a missing image
    would otherwise lower the prompt's denominator: refused before any image is scored)."""
    folder = Path(folder)
    out = Path(out) if out else folder / "results.jsonl"
    partial = partial_path(out, detector, colors, thresholds)
    prompts = prompt_folders(folder) if folder.is_dir() else []
    if not prompts:
        raise GtRError(f"{folder} holds no GenEval prompt folders (00000/metadata.jsonl, 00000/samples/0000.png, "
                       f"...): generate first, or point at such a folder")
    done = _resume_rows(partial)
    todo = [(p, images_of(p)) for p in prompts]
    if images_per_prompt is not None:
        short = [(p, len(images)) for p, images in todo if len(images) != images_per_prompt]
        if short:
            (p, found), more = short[0], f" (and {len(short) - 1} more folders)" if len(short) > 1 else ""
            raise GtRError(f"{p / 'samples'} holds {found} images, not {images_per_prompt}{more}: finish the "
                           "generation (re-run with generate=true) before scoring")
    total = sum(len(images) for _, images in todo)
    with open(partial, "a") as sink, tqdm(total=total, unit="img", desc=f"GenEval ({detector.label})",
                                          disable=not progress) as bar:
        for prompt, images in todo:
            try:
                metadata = json.loads((prompt / "metadata.jsonl").read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise GtRError(f"{prompt / 'metadata.jsonl'} is missing or not one JSON object ({err}): re-run the "
                               f"generation to rewrite it") from None
            rows = [score_image(path, metadata, detector, colors, thresholds) for path in images
                    if str(path) not in done]
            for row in rows:
                sink.write(json.dumps(row) + "\n")
                done[row["filename"]] = row
            sink.flush()
            bar.update(len(images))
    results = [done[str(path)] for _, images in todo for path in images]
    write_jsonl(out, results)
    partial.unlink()
    return results


def partial_path(out: Path, detector: Detector, colors: ColorClassifier, thresholds: Thresholds) -> Path:
    """The partial results of one scorer: a restart with another detector, CLIP or thresholds starts afresh."""
    scorer = {"detector": detector.label, "detector_model": detector.identity, "clip": colors.identity,
              "thresholds": dataclasses.asdict(thresholds)}
    key = hashlib.sha256(json.dumps(scorer, sort_keys=True).encode()).hexdigest()[:12]
    return out.with_name(f".{out.stem}.{key}.partial.jsonl")


def _resume_rows(path: Path) -> dict[str, dict]:
    """Rows of a partial results file by filename; the file is rewritten without a line cut by a kill, so that
    appending continues on a fresh line."""
    rows = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[row["filename"]] = row
        write_jsonl(path, rows.values())
    return rows


def write_jsonl(path: Path, rows) -> None:
    write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
