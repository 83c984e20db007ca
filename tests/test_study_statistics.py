"""The study's statistics on hand-made numbers: published intervals, Holm, and every verdict reachable."""
import numpy as np
import pytest

from gtr.study.statistics import (compare_means, compare_proportions, decide, holm, newcombe, premise_gate,
                                  wilson)


def test_intervals_match_published_values():
    # Newcombe (1998), Statistics in Medicine 17:873, Table II example (a): 56/70 vs 48/80, method 10
    lo, hi = newcombe(56, 70, 48, 80)
    assert lo == pytest.approx(0.0524, abs=5e-4) and hi == pytest.approx(0.3339, abs=5e-4)
    lo, hi = wilson(81, 263)  # Newcombe (1998), Stat Med 17:857, example: 0.2553-0.3662
    assert lo == pytest.approx(0.2553, abs=5e-4) and hi == pytest.approx(0.3662, abs=5e-4)


def test_holm_step_down():
    assert np.allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    assert np.allclose(holm([0.5]), [0.5])


def _verdict(comparison):
    return decide([comparison])[0].verdict


def test_every_verdict_is_reachable_for_proportions():
    better = compare_proportions("a better", "a", "b", "validity", (900, 1000), (800, 1000), "better", 0.05)
    assert better.difference == pytest.approx(0.1) and _verdict(better) == "holds"
    equal = compare_proportions("a better", "a", "b", "validity", (81, 100), (80, 100), "better", 0.05)
    assert _verdict(equal) == "undecided"  # equal within error is never "better"
    big_equal = compare_proportions("a better", "a", "b", "validity", (801, 1000), (800, 1000), "better", 0.05)
    assert _verdict(big_equal) == "does not hold"  # any advantage is below the margin
    keeps = compare_proportions("a keeps", "a", "b", "validity", (795, 1000), (800, 1000), "noninferior", 0.05)
    assert _verdict(keeps) == "holds"
    loses = compare_proportions("a keeps", "a", "b", "validity", (650, 1000), (800, 1000), "noninferior", 0.05)
    assert _verdict(loses) == "does not hold"
    few = compare_proportions("a keeps", "a", "b", "validity", (38, 50), (40, 50), "noninferior", 0.05)
    assert _verdict(few) == "undecided"  # too few images to tell: not "matches"


def test_welch_over_seeds_with_lower_is_better():
    a, b = [40.1, 40.5, 39.8], [50.2, 49.7, 50.6]  # a has the lower FID analogue: a is better
    c = compare_means("a better", "a", "b", "fid", a, b, "better", margin=1.0)
    assert c.difference == pytest.approx(np.mean(b) - np.mean(a)) and c.ci[0] > 0
    assert _verdict(c) == "holds" and "Welch" in c.test
    assert _verdict(compare_means("x", "a", "b", "fid", b, a, "better", 1.0)) == "does not hold"
    with pytest.raises(ValueError, match="at least 2 seeds"):
        compare_means("x", "a", "b", "fid", [1.0], a, "better")


def test_holm_makes_a_table_stricter_than_its_claims_alone():
    weak = compare_proportions("w", "a", "b", "validity", (835, 1000), (800, 1000), "better", 0.05)
    assert _verdict(weak) == "holds"  # p ~ 0.02 alone
    table = decide([weak] + [compare_proportions(f"n{i}", "a", "b", "validity", (800, 1000), (800, 1000),
                                                 "better", 0.05) for i in range(4)])
    assert table[0].verdict == "undecided" and table[0].p_holds_holm == pytest.approx(5 * weak.p_holds)


def test_premise_gate():
    assert premise_gate(1600, 2000, 1000, 2000)["passed"]
    assert not premise_gate(1600, 2000, 1500, 2000)["passed"]  # a 5-point drop is too small
    assert not premise_gate(1200, 2000, 600, 2000)["passed"]  # 64-step samples valid only 60 % of the time
    with pytest.raises(ValueError, match="claim kind"):
        compare_proportions("x", "a", "b", "v", (1, 2), (1, 2), "matches")


def test_rates_of_zero_or_one_never_decide_from_nothing():
    """0 of 6 against 0 of 6 (or all valid): a zero standard error must not make a claim certain."""
    for counts in ((0, 6), (6, 6)):
        for kind in ("noninferior", "better"):
            assert _verdict(compare_proportions("c", "a", "b", "validity", counts, counts, kind, 0.05)) == "undecided"
    # with many images the same rates are decided
    assert _verdict(compare_proportions("c", "a", "b", "validity", (0, 3000), (0, 3000), "noninferior", 0.05)) == "holds"
