"""The paper's MAR rows (Tables 1, 3, 4, 5) as the sampler configs that reproduce them, our reading of each row,
the rows that are ours (compositions, literal readings), and the paper's printed values (paper_values.json).

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


# Our reading of each paper row, by sampler config (what scripts/bench_flops.py writes beside each row).
NOTES = {
    "halton": "MAR's cosine token counts with the Halton order (arccos counts: sampler.counts=arccos, within 0.1 %)",
    "disa": "24 AR steps, 50->5 linear: the only setting that fits the row (docs/flops.md Sec. 2.5); labelled 16 in "
            "the paper",
    "gtr_16": "steps (15, 2, 2): the schedule closest to the paper's FLOPs under its stated diffusion settings; the "
              "split is not identifiable from FLOPs",
    "disa_16": "16 AR steps, 50->5 linear (docs/flops.md Sec. 2.5); labelled 8 in the paper",
    "lazymar": "41 AR steps, the released code's defaults, 100 unclipped diffusion steps (LazyMAR's own diffusion "
               "code): the setting that fits the row (docs/flops.md Sec. 2.6); labelled 16 in the paper",
    "lazymar_8": "15 AR steps, defaults, unclipped: no single setting fits this row (best max error 0.24 T, "
                 "docs/flops.md Sec. 2.6); MAR-L's printed 5.77 T sits near 14 steps, and its printed Speed 5.37 "
                 "contradicts its own FLOPs (32.75 / 5.77 = 5.68)",
    "gtr_8": "steps (7, 1, 1); no schedule with the stated diffusion settings fits all three models to 1 %",
    "gtr_star/constant_steps=50": "the FLOPs reading of docs/flops.md Sec. 2.8",
    "gtr_dagger": "with gtr_16's 19 AR steps; the paper's 33.92 implies more AR steps, a schedule the paper does not "
                  "give",
    "gtr_16/fts_selection=all": "all 128 reconstruction tokens at T_detail; the paper's +0.70 T over FTS implies about "
                                "45 tokens (docs/flops.md Sec. 2.8)",
}
TABLE3_LABELS = {(True, False, False): "GtR* only (constant 50 diffusion steps)",
                 (False, True, False): "GtR† only (stage-aware steps, random order)",
                 (True, True, False): "GtR* + GtR†, no FTS", (True, True, True): "GtR* + GtR† + FTS"}

# Rows that are ours, not the paper's: (table, label, sampler config [+cache config], overrides, the paper row
# they are compared with as {model: (TFLOPs, Speed)} or None, note).
OURS = [
    (1, "GtR as literally stated (rates 2.67/10.67/64)", "gtr", {}, "gtr_16",
     "the text's rates give 24 + 6 + 2 = 32 AR steps, incompatible with the paper's own FLOPs (shown beside the "
     "paper's GtR row for contrast)"),
    (3, "GtR* only (constant 100 diffusion steps, literal)", "gtr_star", {}, "gtr_star",
     "the literal reading (the baseline's 100 steps on every token) overshoots the paper"),
    (1, "+GtR-16 + LazyMAR (not in the paper)", "gtr_16+lazymar", {}, None,
     "GtR-16's schedule with LazyMAR's caches (released defaults, step_map=index): on 19 AR steps no decoder "
     "pruning (the keep ratios start at step 20); the encoder, condition and head caches act"),
    (1, "+GtR-8 + LazyMAR (not in the paper)", "gtr_8+lazymar", {}, None,
     "9 AR steps: steps 0-5 are full under the released rule, so only 6-8 use the token caches; the head cache acts "
     "everywhere"),
    (1, "+DiSA + LazyMAR (not in the paper)", "disa+lazymar", {}, None, "DiSA's 24 AR steps with LazyMAR's caches"),
]


def note_of(config: str, overrides: dict) -> str:
    """Our reading of a row run as ``config`` with ``overrides`` (empty when there is nothing to say)."""
    return NOTES.get("/".join([config, *(f"{k}={v}" for k, v in overrides.items())]), "" if overrides else
                     NOTES.get(config, ""))


@lru_cache(maxsize=1)
def paper_values() -> dict:
    """Tables 1-5 as printed in the paper (for comparison; never measured here)."""
    return json.loads(PAPER_VALUES.read_text())
