"""scripts/make_tables.py on a fixture of run records."""
import json

from gtr.cli import make_tables


def record(model, config, sampler, fid, is_, n=50_000, seed=0):
    return {"model": model, "sampler_config": config, "sampler": sampler, "seed": seed, "num_images": n,
            "device": "cuda:0", "metrics": {"extractor": "inception-v3-compat", "fid": fid, "is": is_}}


def test_tables_from_run_records(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    gtr16 = {"name": "gtr", "steps": [15, 2, 2], "fts": True, "fts_selection": "high"}
    for seed, fid in ((0, 1.60), (1, 1.62)):
        (runs / f"h_gtr_{seed}.json").write_text(json.dumps(record("mar_h", "gtr_16", gtr16, fid, 300.0, seed=seed)))
    (runs / "h_nofts.json").write_text(json.dumps(record("mar_h", "gtr_16", {**gtr16, "fts": False}, 1.70, 299.0)))
    (runs / "b_mar.json").write_text(json.dumps(record("mar_b", "mar", {"name": "mar", "num_iter": 64}, 2.40, 280.0,
                                                       n=10_000)))
    cells = {"single_object": 1.0, "two_object": 0.6, "colors": 0.8, "counting": 0.4, "position": 0.1,
             "color_attr": 0.3, "overall": 0.5}
    def geneval_run(seed, overall, evaluator="GenEval", **sampler):
        return {"model": "lightgen", "sampler_config": "gtr", "sampler": {"name": "gtr", **sampler}, "seed": seed,
                "num_images": 2212, "evaluator": evaluator, "geneval": {**cells, "overall": overall}}
    for seed, overall in ((0, 0.54), (1, 0.58)):
        (runs / f"geneval_{seed}.json").write_text(json.dumps(geneval_run(seed, overall)))
    # Neither another detector's scores nor a run with other sampler settings join the row's mean.
    (runs / "geneval_hf.json").write_text(json.dumps(geneval_run(2, 0.10, "GenEval (HF detector)")))
    (runs / "geneval_k3.json").write_text(json.dumps(geneval_run(3, 0.10, num_stages=3)))
    (runs / "unscored.json").write_text(json.dumps({**record("mar_l", "mar", {}, 0, 0), "metrics": {}}))
    out = tmp_path / "tables"
    make_tables(["--runs", str(runs / "*.json"), "--out", str(out)])
    t1 = (out / "table1.md").read_text()
    assert "| MAR-H | 16 | +GtR (Ours) | `gtr_16` |" in t1 and "1.61 / 1.59" in t1 and "300.0 / 304.4" in t1
    assert "2.40 (n=10000) / 2.32" in t1  # fewer than 50k images is flagged
    assert "17.29 / 17.34" in t1  # FLOPs from results/flops.json
    t3 = (out / "table3.md").read_text()
    assert "| ✓ | ✓ | ✗ | `gtr_16 fts=False` |" in t3 and "1.70 / 1.65" in t3
    assert "1.61 / 1.59" in (out / "table4.md").read_text() and "1.61 / 1.59" in (out / "table5.md").read_text()
    assert (out / "table1_speed_fid.png").stat().st_size > 1000
    t2 = (out / "table2.md").read_text()
    assert "| 16 | +Step=16 | `lightgen_16` | — / 0.75 | — / 1.37 | 1.61 / — |" in t2 and "— / 0.55" in t2
    gtr_row = next(line for line in t2.splitlines() if "| 16 | +GtR (Ours) | `gtr_lightgen` |" in line)
    assert "0.56±0.03 / 0.56" in gtr_row and "1.00±0.00 / 0.99" in gtr_row and "| 2 (GenEval; 2212 images) |" in gtr_row
    assert "| 16 | +LazyMAR (our port) | `lazymar_lightgen_16` |" in t2 and "| — | SDv1.5 |" in t2
