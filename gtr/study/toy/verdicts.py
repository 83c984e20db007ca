"""The toy studies' verdicts: each claim's row pairs compared on the FID analogue (Welch over seeds, accuracy
beside it), Holm-corrected over the report's comparisons (:mod:`gtr.study.statistics`)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from gtr.study.statistics import RELATIVE_FID_MARGIN
from gtr.study.toy.rows import Claim


def stat(per_seed: Sequence[Mapping], key: str) -> tuple[float, float]:
    """Mean and (sample) std over seeds; std 0 for a single seed."""
    values = np.array([r[key] for r in per_seed], dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def comparisons(claim: Claim, rows: Mapping, samples: int) -> list | None:
    """The claim's pairs as :class:`gtr.study.statistics.Comparison` on the FID analogue (Welch over seeds) and on
    class accuracy (a proportion of ``samples`` images per seed); None when a row is not measured. "worse" claims
    are "better" claims with the rows swapped; "not worse" ones are non-inferiority claims."""
    from gtr.study.statistics import compare_means, compare_proportions
    if any(a not in rows or b not in rows for a, b in claim.pairs):
        return None
    out = []
    for a, b in claim.pairs:
        if claim.direction == "worse":
            a, b = b, a
        kind = "noninferior" if claim.direction == "not worse" else "better"
        fid = [[r["fid_fmnist"] for r in rows[k]["per_seed"]] for k in (a, b)]
        margin = RELATIVE_FID_MARGIN * float(np.mean(fid[1]))
        out.append(compare_means(claim.text, a, b, "FID analogue", *fid, kind, margin))
        hits = [(round(sum(r["accuracy"] * samples for r in rows[k]["per_seed"])), samples * len(rows[k]["per_seed"]))
                for k in (a, b)]
        out.append(compare_proportions(claim.text, a, b, "accuracy", *hits, kind, 0.05))
    return out


def verdict(decided: Sequence) -> str:
    """A claim's verdict from its decided comparisons on one metric: holds if every pair holds, does not hold if
    any pair does not, else undecided."""
    words = [c.verdict for c in decided]
    if "does not hold" in words:
        return "does not hold"
    return "holds" if words and all(w == "holds" for w in words) else "undecided"


def figure3_comparison(f3: Mapping):
    """Figure 3's claim (a spread-out half pins the image down more than a contiguous one: less pixel spread across
    seeds), as a z-test of the two mean spreads over the reference images."""
    from gtr.study.statistics import compare_estimates
    c, b = f3["checkerboard"], f3["block"]
    return compare_estimates("Figure 3: a spread-out (checkerboard) half pins the image down more than a contiguous "
                             "half (less pixel spread across seeds)", "checkerboard", "block", "pixel std across seeds",
                             (c["pixel_std_mean"], c["pixel_std_sem"]), (b["pixel_std_mean"], b["pixel_std_sem"]),
                             "better", 0.0)


def claim_lines(claims: Sequence[Claim], rows: Mapping, samples: int, f3: Mapping | None = None) -> list[str]:
    """One line per claim with its verdict on the FID analogue (accuracy beside it, decided on its own), every
    comparison Holm-corrected with the others of the list (per metric), then the rule."""
    from gtr.study.statistics import decide
    found = [(claim, comparisons(claim, rows, samples)) for claim in claims]
    flat = [c for _, cs in found if cs for c in cs]
    extra = [figure3_comparison(f3)] if f3 else []
    decided = {}
    for metric in ("FID analogue", "accuracy"):
        group = [c for c in flat if c.metric == metric] + (extra if metric == "FID analogue" else [])
        decided.update({id(c): d for c, d in zip(group, decide(group))})
    out = []
    for claim, cs in found:
        if cs is None:
            out.append(f"- {claim.text}: **not measured yet**.")
            continue
        fid = [decided[id(c)] for c in cs if c.metric == "FID analogue"]
        acc = [decided[id(c)] for c in cs if c.metric == "accuracy"]
        detail = "; ".join(f"{c.a} vs {c.b}: FID analogue {c.a_value:.2f} vs {c.b_value:.2f}, difference "
                           f"{c.difference:+.2f} [{c.ci[0]:+.2f}, {c.ci[1]:+.2f}], Holm p {_p(c):.3g}" for c in fid)
        out.append(f"- {claim.text}: **{verdict(fid)}** ({detail}); on accuracy: {verdict(acc)}.")
    if f3:
        c = decided[id(extra[0])]
        out.append(f"- {c.claim}: **{c.verdict}** ({c.a_value:.4f} vs {c.b_value:.4f}, difference "
                   f"{c.difference:+.4f} [{c.ci[0]:+.4f}, {c.ci[1]:+.4f}], z-test over the reference images, "
                   f"Holm p {_p(c):.3g}).")
    out += ["", "Rule (the scenes study's, gtr/study/statistics.py): each pair is a one-sided test at 5 %, "
            "Holm-corrected over every comparison of this list (per metric). FID analogue: Welch's t-test over the "
            f"seeds; accuracy: the two-proportion z-test over images. Differences are positive when the claim's "
            f"side is better. A \"keeps quality\" claim holds when its side is shown to be worse by less than the "
            f"margin ({RELATIVE_FID_MARGIN:.0%} of the compared row's FID analogue; 5 points of accuracy), and does not "
            "hold when it is shown to be worse by more; a \"beats\" claim holds when its side is shown to be "
            "better at all, and does not hold when its advantage is shown to be below the margin. Otherwise "
            "**undecided**: the data cannot tell. A claim holds when all its pairs hold, and does not hold when any "
            "does not."]
    return out


def _p(c) -> float:
    return c.p_fails_holm if c.verdict == "does not hold" else c.p_holds_holm
