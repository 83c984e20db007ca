"""GenEval's summary (``evaluation/summary_scores.py``): per-task image accuracy, and the Overall score as the
*unweighted* mean of the task accuracies (not the accuracy over all images)."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from gtr.errors import GtRError

# Table 2's column order (GenEval's README orders Counting before Colors).
TABLE2_COLUMNS = ("single_object", "two_object", "colors", "counting", "position", "color_attr")


def summarize(results: Iterable[dict]) -> dict:
    """From rows of ``results.jsonl`` (``tag``, ``correct``, ``metadata``): image and prompt counts, % correct
    images, % correct prompts (any image correct), each task's accuracy with its counts, and ``overall``."""
    results = list(results)
    if not results:
        raise GtRError("no image was scored: the prompt folders hold no samples/<number>.png; generate first")
    by_task: dict[str, list[bool]] = defaultdict(list)  # insertion order = first appearance, as the official
    by_prompt: dict[str, list[bool]] = defaultdict(list)
    for row in results:
        by_task[row["tag"]].append(bool(row["correct"]))
        by_prompt[row["metadata"]].append(bool(row["correct"]))
    tasks = {tag: {"score": sum(v) / len(v), "correct": sum(v), "images": len(v)} for tag, v in by_task.items()}
    return {
        "images": len(results),
        "prompts": len(by_prompt),
        "correct_images": sum(bool(r["correct"]) for r in results) / len(results),
        "correct_prompts": sum(any(v) for v in by_prompt.values()) / len(by_prompt),
        "tasks": tasks,
        "overall": sum(t["score"] for t in tasks.values()) / len(tasks),
    }


def scores(summary: dict) -> dict[str, float]:
    """The Table 2 cells: each task's accuracy and ``overall`` (tasks absent from the run are left out)."""
    out = {tag: summary["tasks"][tag]["score"] for tag in TABLE2_COLUMNS if tag in summary["tasks"]}
    out["overall"] = summary["overall"]
    return out


def format_summary(summary: dict) -> str:
    """The official script's printout."""
    lines = ["Summary", "=======", f"Total images: {summary['images']}", f"Total prompts: {summary['prompts']}",
             f"% correct images: {summary['correct_images']:.2%}",
             f"% correct prompts: {summary['correct_prompts']:.2%}", "", "Task breakdown", "=============="]
    for tag, t in summary["tasks"].items():
        lines.append(f"{tag:<16} = {t['score']:.2%} ({t['correct']} / {t['images']})")
    lines += ["", f"Overall score (avg. over tasks): {summary['overall']:.5f}"]
    return "\n".join(lines)

