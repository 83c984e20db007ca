"""Our GenEval decision rules against the official evaluator's, on synthetic detections.

    python scripts/check_geneval_rules.py --official-repo /path/to/djghosh13/geneval [--images-per-prompt 20]

Imports the official ``evaluation/evaluate_images.py`` from a checkout with its model libraries (mmdet, open_clip,
clip_benchmark, pandas) replaced by stand-ins, since only its decision code runs: the detector returns synthetic
per-class boxes written here, and both sides get the same colour function (a hash of each box). For every prompt of
the official metadata file it draws random detections (scores spread around the 0.3 and 0.9 thresholds, boxes
placed to give every relative position), then compares the official ``evaluate_image`` (correct, reason, detected
boxes) with ours (``select_objects`` + ``evaluate``). Writes results/geneval_rules_parity.{json,md}.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import types
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from gtr.errors import one_line_errors
from gtr.eval.geneval.prompts import read_metadata
from gtr.eval.geneval.rules import COLORS, OBJECT_NAMES, Thresholds, evaluate, select_objects

REPO = Path(__file__).resolve().parent.parent


def load_official(repo: Path, detections: dict, colors):
    """The official module with stand-ins for its model libraries; ``detections['now']`` is what its detector
    returns next."""
    stubs = {name: types.ModuleType(name) for name in
             ("mmdet", "mmdet.apis", "open_clip", "clip_benchmark", "clip_benchmark.metrics",
              "clip_benchmark.metrics.zeroshot_classification", "pandas")}
    stubs["mmdet"].__file__ = str(repo / "mmdet" / "__init__.py")
    stubs["clip_benchmark.metrics"].zeroshot_classification = stubs["clip_benchmark.metrics.zeroshot_classification"]
    # mmdet's result without masks: a list of per-class [N, 5] box arrays
    stubs["mmdet.apis"].inference_detector = lambda model, path: [boxes for boxes, _ in detections["now"]]
    stubs["mmdet.apis"].init_detector = lambda *a, **k: None
    sys.modules.update(stubs)
    import torch
    cuda = torch.cuda.is_available
    torch.cuda.is_available = lambda: True  # the module asserts a GPU at import
    try:
        spec = importlib.util.spec_from_file_location("geneval_official", repo / "evaluation" / "evaluate_images.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        torch.cuda.is_available = cuda
    t = Thresholds()
    module.THRESHOLD, module.COUNTING_THRESHOLD, module.MAX_OBJECTS = t.score, t.counting_score, t.max_objects
    module.NMS_THRESHOLD, module.POSITION_THRESHOLD = t.max_overlap, t.position
    module.classnames = list((repo / "evaluation" / "object_names.txt").read_text().split("\n"))[:80]
    module.object_detector = None
    module.color_classification = lambda image, objects, classname: colors(objects, classname)
    return module


def box_colors(objects, classname) -> list[str]:
    """A colour per object from a hash of its box: the same answer for the same box on both sides."""
    return [COLORS[int(hashlib.sha256(np.asarray(o[0][:4], np.float64).tobytes() + classname.encode())
                       .hexdigest(), 16) % len(COLORS)] for o in objects]


def random_detections(rng: np.random.Generator, metadata: dict, size: int = 512) -> list:
    """Per-class (boxes [N, 5], masks None) for the 80 classes: the prompt's classes get 0-5 boxes (or, half the
    time, about the requested count) with a third of the scores within 0.05 of a threshold; three other classes get
    some too."""
    out = [(np.zeros((0, 5), np.float32), None) for _ in OBJECT_NAMES]
    wanted = {OBJECT_NAMES.index(c["class"]): c["count"] for c in metadata["include"]}
    others = rng.choice(len(OBJECT_NAMES), size=3, replace=False)
    for index in set(wanted) | set(others.tolist()):
        # Half the time near the requested count with confident scores, so that correct images are common too.
        near = index in wanted and rng.random() < 0.5
        n = max(0, wanted[index] + int(rng.integers(-1, 2))) if near else int(rng.integers(0, 6))
        scores = np.where(rng.random(n) < 0.33, rng.choice([0.3, 0.9], n) + rng.uniform(-0.05, 0.05, n),
                          rng.uniform(0.9, 1.0, n) if near else rng.random(n))
        x0, y0 = rng.uniform(0, size * 0.8, n), rng.uniform(0, size * 0.8, n)
        w, h = rng.uniform(5, size * 0.4, n), rng.uniform(5, size * 0.4, n)
        boxes = np.stack([x0, y0, np.minimum(x0 + w, size), np.minimum(y0 + h, size), scores], axis=1)
        out[index] = (boxes.astype(np.float32), None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official-repo", type=Path, required=True, help="a checkout of djghosh13/geneval")
    parser.add_argument("--images-per-prompt", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=REPO / "results")
    args = parser.parse_args()
    records = read_metadata(args.official_repo / "prompts" / "evaluation_metadata.jsonl")
    detections = {}
    official = load_official(args.official_repo, detections, box_colors)
    image = args.out_dir / ".geneval_rules_check.png"
    Image.new("RGB", (512, 512)).save(image)
    rng = np.random.default_rng(args.seed)
    counts, disagreements = Counter(), []
    try:
        for record in records:
            for _ in range(args.images_per_prompt):
                detections["now"] = random_detections(rng, record)
                theirs = official.evaluate_image(str(image), record)
                objects = select_objects(detections["now"], OBJECT_NAMES, record["tag"])
                correct, reason = evaluate(objects, record, lambda found, name: box_colors(found, name))
                details = json.dumps({k: [o.box.tolist() for o in v] for k, v in objects.items()})
                same = (theirs["correct"], theirs["reason"], theirs["details"]) == (correct, reason, details)
                counts[(record["tag"], "cases")] += 1
                counts[(record["tag"], "correct")] += int(theirs["correct"])
                counts[(record["tag"], "agree")] += int(same)
                if not same and len(disagreements) < 20:
                    disagreements.append({"prompt": record["prompt"], "official": [theirs["correct"],
                                          theirs["reason"]], "ours": [correct, reason]})
    finally:
        image.unlink(missing_ok=True)
    tags = list(dict.fromkeys(r["tag"] for r in records))
    rows = [{"task": t, "cases": counts[(t, "cases")], "official_correct": counts[(t, "correct")],
             "agree": counts[(t, "agree")]} for t in tags]
    command = " ".join(["python", "scripts/check_geneval_rules.py", "--official-repo", "<djghosh13/geneval>",
                        *sys.argv[3:]])
    result = {"command": command, "official": "djghosh13/geneval evaluation/evaluate_images.py (decision code only)",
              "rows": rows, "disagreements": disagreements}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "geneval_rules_parity.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# GenEval decision rules: ours vs the official evaluator's (measured)", "",
             f"Command: `{command}`  ",
             "Synthetic detections for every official prompt (scores around the 0.3/0.9 thresholds, boxes in every "
             "relative position), one colour function for both; a case agrees when correct, reason and the kept "
             "boxes are identical.", "", "| task | cases | official: correct | agree |", "|---|---|---|---|"]
    lines += [f"| {r['task']} | {r['cases']} | {r['official_correct']} | {r['agree']} |" for r in rows]
    total, agree = sum(r["cases"] for r in rows), sum(r["agree"] for r in rows)
    lines += ["", f"Agreement: {agree} / {total} cases."]
    (args.out_dir / "geneval_rules_parity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    with one_line_errors():
        main()
