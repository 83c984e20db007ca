"""The paper's MAR rows (Tables 1, 3, 4, 5) as the sampler configs that reproduce them, and the paper's printed values.

One definition serves the ImageNet tables (``scripts/make_tables.py``) and the 16x16-token testbed's study
(:mod:`gtr.study.toy`), so a row means the same sampler everywhere.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

PAPER_VALUES = Path(__file__).with_name("paper_values.json")

# Paper row (block, method) -> the sampler config (and overrides) that reproduces it (bench_flops uses the same).
TABLE1 = [
    ("64", "MAR (64)", "mar", {}),
    ("16", "+Step=16", "mar_16", {}),
    ("16", "+Halton", "halton", {}),
    ("16", "+DiSA", "disa", {}),
    ("16", "+LazyMAR", "lazymar", {}),
    ("16", "+GtR (Ours)", "gtr_16", {}),
    ("8", "+Step=8", "mar_8", {}),
    ("8", "+Halton", "halton_8", {}),
    ("8", "+DiSA", "disa_16", {}),
    ("8", "+LazyMAR", "lazymar_8", {}),
    ("8", "+GtR (Ours)", "gtr_8", {}),
]
TABLE3 = [  # (GtR*, GtR†, FTS) -> config
    ((True, False, False), "gtr_star", {"constant_steps": 50}),
    ((False, True, False), "gtr_dagger", {}),
    ((True, True, False), "gtr_16", {"fts": False}),
    ((True, True, True), "gtr_16", {}),
]
TABLE4 = {"Origin": ("mar", {}), "+Random": ("gtr_16", {"fts_selection": "random"}),
          "+Low-Freq.": ("gtr_16", {"fts_selection": "low"}), "+Full-Enhanced": ("gtr_16", {"fts_selection": "all"}),
          "+High-Freq. (Ours)": ("gtr_16", {})}
TABLE5 = {"Raster": ("gtr_order_raster", {}), "Subsample": ("gtr_order_subsample", {}),
          "Random": ("gtr_order_random", {}), "GtR (Ours)": ("gtr_16", {})}


@lru_cache(maxsize=1)
def paper_values() -> dict:
    """Tables 1-5 as printed in the paper (for comparison; never measured here)."""
    return json.loads(PAPER_VALUES.read_text())
