"""The scenes study's logic on hand-made results: rows are real configs, the premise gate, claims decided per table
(every verdict reachable), iso-FLOPs comparators, attempts kept when the model changes, and the report."""
import json

import pytest
import torch

from gtr.study.scenes import (CLAIMS, PREMISE, ROW, ROWS, TABLES, frontier_claims, load_state, premise, rows_of,
                              verdicts)

SETTINGS = {"samples": 800, "seeds": [0, 1, 2], "batch_size": 200, "mode": "eager"}


def _row(valid: float, gflops: float = 10.0, fid: float = 5.0, n: int = 800) -> dict:
    k = round(valid * n)
    return {"sampler": {}, "gflops": gflops, "ar_steps": 8,
            "per_seed": [{"seed": s, "count": n, "valid": k, "fid_scenes": fid + 0.1 * s, "kid_scenes": 0.01,
                          "accuracy": 0.9, "s_per_image": 0.01 * gflops, "fail_count": 0.1} for s in range(3)]}


def test_rows_are_unique_and_resolve_to_configs():
    from gtr.jobs.common import sampling_options
    assert len({r.key for r in ROWS}) == len(ROWS)
    assert {r.table for r in ROWS} <= set(TABLES)
    assert all(c.a in ROW and c.b in ROW for c in CLAIMS)
    for row in ROWS:  # every row is a config of configs/sampler (+ cache) on mar_scenes, with valid overrides
        options, _ = sampling_options("mar_scenes", row.config, row.overrides)
        assert all(options[k] == v for k, v in row.overrides.items())
    assert rows_of(["premise"]) == list(PREMISE)
    with pytest.raises(Exception, match="unknown table"):
        rows_of(["table2"])


def test_premise_gate_needs_both_regimes():
    rows = {"mar": _row(0.85), "mar_8": _row(0.60)}
    assert premise({"rows": rows})["guided"]["passed"] and not premise({"rows": rows})["passed"]
    rows |= {"mar_64_unguided": _row(0.75), "mar_8_unguided": _row(0.70)}  # a 5-point drop: not enough
    gate = premise({"rows": rows})
    assert not gate["unguided"]["passed"] and not gate["passed"]
    rows["mar_8_unguided"] = _row(0.50)
    assert premise({"rows": rows})["passed"]


def test_guidance_sweep_picks_the_most_valid_scale(tmp_path):
    from gtr.study.scenes import best_cfg

    def row(valid, cfg):
        return {**_row(valid), "sampler": {"cfg": cfg}}
    assert best_cfg({"rows": {"mar_64_unguided": row(0.6, 1.0)}}) is None  # one scale is no sweep
    rows = {"mar_64_unguided": row(0.6, 1.0), "mar_cfg2": row(0.8, 2.0), "mar_cfg4": row(0.8, 4.0),
            "mar_cfg6": row(0.7, 6.0)}
    pick = best_cfg({"rows": rows})
    assert pick["cfg"] == 2.0 and pick["valid"][6.0] == 0.7  # a tie goes to the weaker guidance
    rows["mar"] = {**_row(0.8), "sampler": {"cfg": 4.0}}
    pytest.importorskip("matplotlib")
    from gtr.study.report import report
    text = report({"current": {"model": "abc", "settings": SETTINGS, "rows": rows}}, tmp_path / "s.md")
    assert "the best scale is **2**" in text and "not the sweep's pick" in text


def test_claims_reach_every_verdict():
    rows = {"mar": _row(0.80), "gtr_16": _row(0.81), "gtr_8": _row(0.60), "mar_16": _row(0.70),
            "mar_8": _row(0.79)}
    decided = {(c["a"], c["b"], c["metric"]): c["verdict"] for c in verdicts({"rows": rows})["table1"]}
    assert decided[("gtr_16", "mar", "exact validity")] == "holds"          # non-inferior within 5 points
    assert decided[("gtr_8", "mar", "exact validity")] == "does not hold"   # 20 points worse
    assert decided[("gtr_16", "mar_16", "exact validity")] == "holds"       # 11 points better
    assert decided[("gtr_8", "mar_8", "exact validity")] == "does not hold"  # worse, not better
    rows["mar_16"] = _row(0.80)
    decided = {(c["a"], c["b"], c["metric"]): c["verdict"] for c in verdicts({"rows": rows})["table1"]}
    assert decided[("gtr_16", "mar_16", "exact validity")] == "does not hold"  # +1 point of 2,400: below the margin
    rows["gtr_16"], rows["mar_16"] = _row(0.81, n=100), _row(0.80, n=100)
    decided = {(c["a"], c["b"], c["metric"]): c["verdict"] for c in verdicts({"rows": rows})["table1"]}
    assert decided[("gtr_16", "mar_16", "exact validity")] == "undecided"  # +1 point of 300: the CI cannot tell
    assert ("gtr_16", "halton", "exact validity") not in decided  # unmeasured rows give no claim


def test_iso_flops_comparators_cost_at_least_as_much():
    rows = {"gtr_16": _row(0.8, gflops=10), "mar_16": _row(0.7, gflops=9.6), "mar_24": _row(0.75, gflops=14),
            "mar": _row(0.8, gflops=30), "halton": _row(0.7, gflops=8)}
    claims = {(c.a, c.b) for c in frontier_claims(rows)}
    assert claims == {("gtr_16", "mar_16")}  # 9.6 >= 0.95 x 10 and the cheapest such; Halton costs less


def test_a_new_model_starts_an_attempt_and_keeps_the_old_gate(tmp_path):
    path = tmp_path / "study.json"
    study = load_state(path, "aaa", SETTINGS)
    study["current"]["rows"] = {"mar": _row(0.9), "mar_8": _row(0.5)}
    path.write_text(json.dumps(study))
    assert load_state(path, "aaa", SETTINGS)["current"]["rows"]  # same model and settings: resumed
    again = load_state(path, "bbb", SETTINGS)
    assert again["current"]["rows"] == {} and again["attempts"][0]["model"] == "aaa"
    assert again["attempts"][0]["premise"]["guided"]["passed"]


def test_report_lists_tables_and_verdicts(tmp_path):
    pytest.importorskip("matplotlib")
    from gtr.study.report import report
    rows = {"mar": _row(0.85, 30), "mar_8": _row(0.6, 4), "mar_16": _row(0.7, 8), "gtr_16": _row(0.84, 9),
            "halton": _row(0.72, 8.5), "gtr_8": _row(0.75, 4.5)}
    study = {"current": {"model": "abc", "settings": SETTINGS, "rows": rows}}
    text = report(study, tmp_path / "scenes_study.md")
    assert "## Table 1" in text and "**holds**" in text and "| +Halton |" in text
    assert "Gate: not passed" in text  # the unguided rows are missing
    assert (tmp_path / "scenes_study_frontier.png").is_file()


def test_sample_sheet_draws_labelled_rows(tmp_path):
    import numpy as np
    from PIL import Image

    from gtr.images import sample_sheet
    image = np.zeros((32, 32, 3), np.uint8)
    sample_sheet([("MAR, 64 AR steps", [(image, "valid")] * 3), ("MAR, 8 AR steps", [(image, "count +1")] * 2)],
                 tmp_path / "sheet.png")
    width, height = Image.open(tmp_path / "sheet.png").size
    assert width == 3 * (96 + 4) + 4 and height == 2 * (16 + 96 + 14 + 4) + 4


def test_figure3_runs_on_the_scenes_model_and_is_decided(tmp_path):
    """Figure 3 on mar_scenes' architecture (random weights here): both halves completed, spreads and validity
    stored, the sheet drawn, and the claim decided with the tables."""
    from safetensors.torch import save_file

    from gtr.models import build_mar
    from gtr.study.scenes import figure3, verdicts
    torch.manual_seed(0)
    weights = tmp_path / "mar_scenes.safetensors"
    save_file({k: v.contiguous() for k, v in build_mar("mar_scenes").state_dict().items()}, str(weights))
    state = {"rows": {}}
    result = figure3(state=state, path=tmp_path / "f3.png", count=3, seeds=2, completion_steps=2,
                     checkpoint=str(weights), base_overrides={"num_iter": 4, "diffusion_steps": 3})
    assert set(result) >= {"checkerboard", "block"} and result["block"]["completions"] == 6
    assert result["checkerboard"]["pixel_std_mean"] >= 0 and (tmp_path / "f3.png").is_file()
    decided = verdicts(state)["figure3"]
    assert len(decided) == 1 and decided[0]["verdict"] in ("holds", "does not hold", "undecided")
