"""GenEval (Ghosh et al., NeurIPS 2023) on maintained models: its decision rules, mmdet's Mask2Former pipeline on
``transformers``, CLIP colour classification, and the official output layout.

    from gtr.eval.geneval import load_color_classifier, load_detector, score_folder, summarize
    rows = score_folder("generated/geneval_lightgen_gtr_seed0", load_detector("mmdet"), load_color_classifier())
    print(summarize(rows)["overall"])
"""
from gtr.eval.geneval.colors import ColorClassifier, load_color_classifier
from gtr.eval.geneval.detector import Detector, load_detector
from gtr.eval.geneval.rules import Thresholds, evaluate, select_objects
from gtr.eval.geneval.score import score_folder
from gtr.eval.geneval.summary import format_summary, summarize

__all__ = ["ColorClassifier", "Detector", "Thresholds", "evaluate", "format_summary", "load_color_classifier",
           "load_detector", "score_folder", "select_objects", "summarize"]
