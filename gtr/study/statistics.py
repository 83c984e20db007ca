"""Deciding a paper claim from a study's numbers: differences, 95 % intervals, named tests, Holm's correction
within a table, and one of three verdicts.

A claim compares a row ``a`` (the paper's method) with a row ``b`` (what it is claimed against) on one metric:

- ``better``: a is better than b. **holds** when the one-sided test of "a better" rejects (Holm-adjusted);
  **does not hold** when the one-sided test of "a better by less than the margin" rejects (a's advantage, if
  any, is smaller than the margin); **undecided** otherwise.
- ``noninferior`` ("keeps quality", "matches"): a is no worse than b by more than the margin. **holds** when
  the one-sided test of "a worse by less than the margin" rejects; **does not hold** when the one-sided test of
  "a worse by more than the margin" rejects; **undecided** otherwise.

Metrics: a proportion of images (validity of the exact scorer, class accuracy) compared by the two-proportion z-test
(Wald with Agresti-Caffo's standard error, shifted by the margin) with Newcombe's hybrid-score interval for the difference; a per-seed metric
(an FID analogue, KID) by Welch's t-test over seeds. "Better" means higher for a proportion, and is stated per
metric for the per-seed ones (lower FID is better). Differences are always a - b in the metric's own direction
(positive = a better); two means with their standard errors over many units by a z-test. Each table's claims are Holm-corrected together, for "holds" and "does not hold" alike.

Numpy and scipy only: importable and testable without torch.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05
RELATIVE_FID_MARGIN = 0.05  # a non-inferiority margin on an FID analogue: this share of the compared row's value
CLAIMS = ("better", "noninferior")
VERDICTS = ("holds", "does not hold", "undecided")


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n <= 0:
        return (float("nan"), float("nan"))
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval (his method 10) for p1 - p2, from the two Wilson intervals."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, confidence)
    l2, u2 = wilson(k2, n2, confidence)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


@dataclass(frozen=True)
class Comparison:
    """One claim: ``a`` vs ``b`` on ``metric``; ``difference`` and ``ci`` are a - b with positive = a better."""
    claim: str
    a: str
    b: str
    metric: str
    kind: str  # better | noninferior
    margin: float
    a_value: float
    b_value: float
    difference: float
    ci: tuple[float, float]
    test: str
    p_holds: float  # one-sided p of the claim's alternative (before Holm)
    p_fails: float  # one-sided p of its opposite (before Holm)
    p_holds_holm: float = float("nan")
    p_fails_holm: float = float("nan")
    verdict: str = "undecided"

    def as_dict(self) -> dict:
        return asdict(self)


def _check(kind: str, margin: float) -> None:
    if kind not in CLAIMS:
        raise ValueError(f"unknown claim kind {kind!r}: use one of {', '.join(CLAIMS)}")
    if not margin >= 0:
        raise ValueError(f"a claim's margin must be >= 0, got {margin}")


def _one_sided(difference: float, se: float, kind: str, margin: float, dist) -> tuple[float, float]:
    """(p of the claim, p of its opposite) for a difference (positive = a better) with standard error ``se``."""
    if se == 0:
        se = 1e-12
    if kind == "better":  # claim: d > 0; opposite: d < margin (no advantage as large as the margin)
        return float(dist.sf(difference / se)), float(dist.cdf((difference - margin) / se))
    # noninferior: claim d > -margin; opposite: d < -margin
    return float(dist.sf((difference + margin) / se)), float(dist.cdf((difference + margin) / se))


def compare_proportions(claim: str, a: str, b: str, metric: str, a_counts: tuple[int, int],
                        b_counts: tuple[int, int], kind: str, margin: float = 0.0) -> Comparison:
    """A claim on a per-image proportion (higher is better): ``a_counts`` = (successes, images)."""
    _check(kind, margin)
    (k1, n1), (k2, n2) = a_counts, b_counts
    p1, p2 = k1 / n1, k2 / n2
    # Agresti-Caffo: the standard error of proportions with one success and one failure added to each group, so
    # that rates of 0 or 1 (every image valid, or none) do not give a zero standard error and a certain verdict.
    q1, q2 = (k1 + 1) / (n1 + 2), (k2 + 1) / (n2 + 2)
    se = math.sqrt(q1 * (1 - q1) / (n1 + 2) + q2 * (1 - q2) / (n2 + 2))
    p_holds, p_fails = _one_sided(p1 - p2, se, kind, margin, stats.norm)
    return Comparison(claim, a, b, metric, kind, margin, p1, p2, p1 - p2, newcombe(k1, n1, k2, n2),
                      "two-proportion z-test (Agresti-Caffo)", p_holds, p_fails)


def compare_means(claim: str, a: str, b: str, metric: str, a_values: Sequence[float], b_values: Sequence[float],
                  kind: str, margin: float = 0.0, higher_is_better: bool = False) -> Comparison:
    """A claim on a per-seed metric (e.g. FID analogue: ``higher_is_better=False``), Welch's t-test over seeds."""
    _check(kind, margin)
    x, y = np.asarray(a_values, float), np.asarray(b_values, float)
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"{claim}: Welch's test needs at least 2 seeds per row ({len(x)} and {len(y)})")
    sign = 1.0 if higher_is_better else -1.0
    d = sign * (x.mean() - y.mean())
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1)) if se > 0 else float(len(x) + len(y) - 2)
    dist = stats.t(df)
    half = dist.ppf(0.975) * se
    p_holds, p_fails = _one_sided(d, se, kind, margin, dist)
    return Comparison(claim, a, b, metric, kind, margin, float(x.mean()), float(y.mean()), float(d),
                      (float(d - half), float(d + half)), f"Welch's t-test ({len(x)} vs {len(y)} seeds)",
                      p_holds, p_fails)


def compare_estimates(claim: str, a: str, b: str, metric: str, a_estimate: tuple[float, float],
                      b_estimate: tuple[float, float], kind: str, margin: float = 0.0,
                      higher_is_better: bool = False) -> Comparison:
    """A claim on two independent estimates given as (mean, standard error), each over many units (e.g. a spread
    averaged over 100 images): the z-test of their difference."""
    _check(kind, margin)
    (ma, sa), (mb, sb) = a_estimate, b_estimate
    d = (ma - mb) if higher_is_better else (mb - ma)
    se = math.sqrt(sa * sa + sb * sb)
    half = stats.norm.ppf(0.975) * se
    p_holds, p_fails = _one_sided(d, se, kind, margin, stats.norm)
    return Comparison(claim, a, b, metric, kind, margin, float(ma), float(mb), float(d), (d - half, d + half),
                      "z-test of two means (standard errors over units)", p_holds, p_fails)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as given)."""
    p = np.asarray(pvalues, float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def decide(comparisons: Sequence[Comparison], alpha: float = ALPHA) -> list[Comparison]:
    """Verdicts for one table's claims, Holm-corrected within the table."""
    if not comparisons:
        return []
    holds = holm([c.p_holds for c in comparisons])
    fails = holm([c.p_fails for c in comparisons])
    out = []
    for c, ph, pf in zip(comparisons, holds, fails):
        verdict = "holds" if ph < alpha else "does not hold" if pf < alpha else "undecided"
        out.append(replace(c, p_holds_holm=float(ph), p_fails_holm=float(pf), verdict=verdict))
    return out


def premise_gate(k64: int, n64: int, k8: int, n8: int, min_drop: float = 0.10, min_valid: float = 0.70) -> dict:
    """The scenes testbed's validity condition: 8 AR steps at least ``min_drop`` below 64 steps in exact validity
    with the 95 % interval of the drop excluding 0, and 64-step samples valid at least ``min_valid`` of the time."""
    drop = k64 / n64 - k8 / n8
    lo, hi = newcombe(k64, n64, k8, n8)
    passed = bool(drop >= min_drop and lo > 0 and k64 / n64 >= min_valid)
    return {"valid_64": k64 / n64, "valid_8": k8 / n8, "drop": drop, "ci": (lo, hi), "passed": passed,
            "rule": f"drop >= {min_drop:.0%} with its 95 % CI above 0, and 64-step validity >= {min_valid:.0%}"}


__all__ = ["ALPHA", "CLAIMS", "Comparison", "VERDICTS", "compare_estimates", "compare_means", "compare_proportions",
           "decide", "holm",
           "newcombe", "premise_gate", "wilson"]
