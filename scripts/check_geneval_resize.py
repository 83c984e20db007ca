"""Our OpenCV-exact bilinear resize (GenEval's detector input) against OpenCV itself.

    pip install opencv-python-headless && python scripts/check_geneval_resize.py

mmcv resizes the evaluator's images with ``cv2.resize(..., INTER_LINEAR)`` on uint8; the detector here reproduces
that integer arithmetic in torch (``gtr.eval.geneval.detector.opencv_linear_resize``) so that no OpenCV is needed.
Writes results/geneval_resize_parity.{json,md}: differing values per case (also for a float bilinear resize).
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gtr.errors import one_line_errors
from gtr.eval.geneval.detector import opencv_linear_resize

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    import cv2
    rng = np.random.default_rng(0)
    rows = []
    for (h, w), (oh, ow), kind in [((512, 512), (800, 800), "noise"), ((512, 512), (800, 800), "smooth"),
                                   ((300, 500), (800, 1333), "noise"), ((1024, 768), (1067, 800), "noise")]:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if kind == "smooth":
            image = cv2.GaussianBlur(image, (9, 9), 3)
        reference = cv2.resize(image, (ow, oh), interpolation=cv2.INTER_LINEAR).astype(int)
        ours = opencv_linear_resize(torch.from_numpy(image), (oh, ow)).numpy().astype(int)
        plain = F.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None].float(), size=(oh, ow), mode="bilinear",
                              align_corners=False).round()[0].permute(1, 2, 0).numpy().astype(int)
        rows.append({"input": f"{h}x{w} {kind}", "output": f"{oh}x{ow}", "values": int(reference.size),
                     "differ_ours": int((ours != reference).sum()),
                     "max_diff_ours": int(np.abs(ours - reference).max()),
                     "differ_float_bilinear": int((plain != reference).sum())})
    command = "python scripts/check_geneval_resize.py"
    result = {"command": command, "opencv": cv2.__version__, "machine": platform.machine(), "rows": rows}
    out = REPO / "results" / "geneval_resize_parity"
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# GenEval detector input: our resize vs OpenCV's (measured)", "",
             f"Command: `{command}`; OpenCV {cv2.__version__}, {platform.machine()}.", "",
             "| input | output | values | differ (ours) | max diff (ours) | differ (float bilinear + round) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['input']} | {r['output']} | {r['values']} | {r['differ_ours']} | {r['max_diff_ours']} | "
              f"{r['differ_float_bilinear']} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    with one_line_errors():
        main()
