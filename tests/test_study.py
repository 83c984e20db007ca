"""The study's claim logic (gtr.study.toy) on hand-made numbers: every verdict is reachable, and the report is
written in the paper's layout with the paper's values beside ours."""
from pathlib import Path

import torch

from gtr.study.toy import TESTBEDS, Claim, claim_lines, figure3_comparison, report


def rows_with(fids: dict[str, list[float]], accuracy: float = 0.9) -> dict:
    return {key: {"per_seed": [{"seed": i, "fid_fmnist": f, "is_fmnist": 5.0, "accuracy": accuracy,
                                "s_per_image": 0.01} for i, f in enumerate(values)]}
            for key, values in fids.items()}


def test_claims_are_decided_by_welch_and_holm_and_every_verdict_is_reachable():
    rows = rows_with({"gtr": [10.0, 10.2, 9.8], "mar": [10.1, 9.9, 10.3], "worse": [30, 31, 32],
                      "noisy": [5.0, 15.0, 25.0], "same": [10.01, 9.99, 10.0], "tight": [10.0, 10.01, 9.99]})
    lines = claim_lines([Claim("GtR keeps MAR's quality", (("gtr", "mar"),), "not worse"),
                         Claim("GtR beats worse", (("gtr", "worse"),), "better"),
                         Claim("worse beats GtR", (("worse", "gtr"),), "better"),
                         Claim("worse is worse than GtR", (("worse", "gtr"),), "worse"),
                         Claim("noisy beats MAR", (("noisy", "mar"),), "better"),
                         Claim("tight beats same", (("tight", "same"),), "better"),
                         Claim("not run", (("gtr", "nothing"),), "better")], rows, samples=1000)
    assert "**holds**" in lines[0]  # within 5 % of 10.1, tightly
    assert "**holds**" in lines[1] and "**does not hold**" in lines[2] and "**holds**" in lines[3]
    assert "**undecided**" in lines[4]  # seeds too spread to tell
    assert "**does not hold**" in lines[5]  # equal within error is never "better": the advantage is below the margin
    assert "**not measured yet**" in lines[6]
    assert "matches" not in "\n".join(lines) and "Holm" in lines[-1]


def test_figure3_verdicts():
    def f3(c, b):
        return {"checkerboard": {"pixel_std_mean": c, "pixel_std_sem": 0.001},
                "block": {"pixel_std_mean": b, "pixel_std_sem": 0.001}}
    assert figure3_comparison(f3(0.02, 0.04)).p_holds < 1e-6
    line = claim_lines([], {}, 1000, f3(0.02, 0.04))[0]
    assert "**holds**" in line
    assert "**undecided**" in claim_lines([], {}, 1000, f3(0.030, 0.031))[0]
    assert "**does not hold**" in claim_lines([], {}, 1000, f3(0.04, 0.02))[0]


def test_testbed16_rows_are_the_paper_configs_and_the_report_has_the_paper_layout(tmp_path):
    bed = TESTBEDS["fmnist16"]
    from gtr.study.toy import sampling_options
    rows = {}
    for i, row in enumerate(bed.rows):  # every row resolves on the 16x16 model; hand-made quality numbers
        sampler, cache = sampling_options(bed, row)
        rows[row.key] = {"group": row.group, "label": row.label, "config": row.config, "sampler": sampler,
                         **({"cache": cache} if cache["name"] != "none" else {}), "gflops": 100.0 / (1 + i),
                         "ar_steps": 8,
                         **rows_with({row.key: [20.0 + i, 21.0 + i, 22.0 + i]})[row.key]}
    state = {"settings": {"samples": 3, "seeds": [0, 1, 2], "device": "cpu"}, "device": "test CPU", "rows": rows}
    text = report(bed, state, tmp_path / "toy_study_16x16")
    for heading in ("## Premise", "## Table 1", "## Table 3", "## Table 4", "## Table 5"):
        assert heading in text
    assert "| 8 | +GtR (Ours) |" in text and "| 2.76 |" in text  # our row beside the paper's MAR-B FID
    raster = [r.key for r in bed.rows].index("gtr_order_raster")
    assert f"| Raster | {21 + raster:.2f} ± 1.00 |" in text  # its row's hand-made FID
    assert "—" not in text.split("## Table 1")[1].split("## Table 3")[0]  # every Table 1 row found
    assert (tmp_path / "toy_study_16x16_speed_quality.png").is_file()
    assert (tmp_path / "toy_study_16x16_ablations.png").is_file() and "(toy_study_16x16_ablations.png)" in text


def test_point_labels_overlap_neither_each_other_nor_the_markers():
    """A tight cluster of points (as the ablations of one plan make) still gets labels that do not overlap."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    from gtr.study.toy.plots import place_labels
    from gtr.images import pyplot
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    points = [(1.0, 50.0), (10.0, 40.0)] + [(3.8 + 0.02 * i, 48.0 + 0.3 * (i % 4)) for i in range(10)]
    ax.plot(*zip(*points), "o")
    ax.set_xscale("log")
    ax.margins(0.15)
    texts = [f"row_{i}_label" for i in range(len(points))]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = place_labels(ax, points, texts)
    for label in labels:
        label.update_positions(renderer)
    boxes = [Text.get_window_extent(label, renderer) for label in labels]  # the texts, without leader lines
    inside = ax.get_window_extent(renderer)
    assert all(inside.contains(b.x0, b.y0) and inside.contains(b.x1, b.y1) for b in boxes)
    markers = [Bbox.from_bounds(x - 3, y - 3, 6, 6) for x, y in (ax.transData.transform(p) for p in points)]
    assert not [(i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])]
    assert not [(i, j) for i, b in enumerate(boxes) for j, m in enumerate(markers) if b.overlaps(m)]
    plt.close(fig)


def test_a_stopped_row_resumes_from_its_finished_seeds(tmp_path, monkeypatch):
    """Seeds a stopped run finished are kept; only the missing ones are generated, and the row ends as if whole."""
    import json
    from gtr.study.toy import measure as study
    calls = []

    def fake_generate(model, tokenizer, sampler, count, seed, batch_size, cache=None):
        calls.append(seed)
        return torch.zeros(count, 28, 28, 3, dtype=torch.uint8), torch.arange(count) % 10, 1.0

    monkeypatch.setattr(study, "generate", fake_generate)
    bed = TESTBEDS["fmnist"]
    row = next(r for r in bed.rows if r.key == "mar_16")
    options, _ = study.sampling_options(bed, row)
    out = tmp_path / "toy"
    done = {"seed": 0, "s_per_image": 0.5, "fid_fmnist": 1.0, "is_fmnist": 1.0, "accuracy": 1.0, "count": 20}
    state = {"settings": {"samples": 20, "seeds": [0, 1, 2], "device": "cpu"}, "rows": {},
             "partial": {"mar_16": {"sampler": options, "cache": None, "per_seed": [done]}}}
    out.with_suffix(".json").write_text(json.dumps(state))
    study.run(bed, keys=["mar_16"], samples=20, seeds=(0, 1, 2), figure3_images=0, cpu_timing=0,
              data_root=Path(__file__).parent / "data" / "fashion_mnist_subset", out=out, command="test")
    assert calls == [1, 2]
    result = json.loads(out.with_suffix(".json").read_text())
    assert [r["seed"] for r in result["rows"]["mar_16"]["per_seed"]] == [0, 1, 2]
    assert result["rows"]["mar_16"]["per_seed"][0] == done and result["partial"] == {}


def test_stored_rows_follow_what_they_run_not_their_key():
    """A renamed row keeps its measurements, a row whose config now resolves to other options is measured again, and
    stored rows no current row runs are kept aside (retired), not reported."""
    from gtr.study.toy import measure as study
    bed = TESTBEDS["fmnist16"]
    rows = {r.key: r for r in bed.rows}
    mar, mar_cfg4 = (study.sampling_options(bed, rows[k])[0] for k in ("mar", "mar_cfg4"))
    assert mar["cfg"] == 1.0 and mar_cfg4 == {**mar, "cfg": 4.0}  # the testbed's default CFG, and attempt 1's
    measured = {"per_seed": [{"seed": 0, "fid_fmnist": 1.0}], "gflops": 1.0, "ar_steps": 64}
    state = {"rows": {"mar": {**measured, "sampler": mar_cfg4},  # measured when the model's CFG was 4.0
                      "mar_cfg1": {**measured, "sampler": mar},  # the old name of today's reference
                      "gone": {**measured, "sampler": {**mar, "temperature": 0.5}}}}
    study.adopt_measured(bed, state)
    assert state["rows"]["mar"]["sampler"] == mar and state["rows"]["mar_cfg4"]["sampler"] == mar_cfg4
    assert state["rows"]["mar_cfg4"]["label"] == rows["mar_cfg4"].label
    assert set(state["rows"]) == {"mar", "mar_cfg4"} and list(state["retired"]) == ["gone"]
    study.adopt_measured(bed, state)  # idempotent; retired rows stay retired
    assert set(state["rows"]) == {"mar", "mar_cfg4"} and list(state["retired"]) == ["gone"]


def test_retime_takes_the_median_of_interleaved_rounds_and_resumes_after_a_stop(tmp_path, monkeypatch):
    """--retime times every row in rounds (every other round reversed), keeps each round, reports the median, and
    a retime stopped half-way times only the rounds it had not finished."""
    import json

    import gtr.sampling
    from gtr.study.toy import measure as study
    bed = TESTBEDS["fmnist"]
    keys = ["mar_16", "gtr_10"]
    rows = {r.key: r for r in bed.rows}
    order = []
    real_sample = gtr.sampling.sample

    def counting_sample(model, sampler, labels, **kwargs):
        if len(labels) == 3:  # the timed batch, not the 2-image warm-up
            order.append(id(sampler))
        return real_sample(model, sampler, labels[:1], **kwargs)

    monkeypatch.setattr(gtr.sampling, "sample", counting_sample)
    state = {"settings": {"samples": 20, "seeds": [0], "device": "cpu"}, "rows": {}}
    for key in keys:
        state["rows"][key] = {"sampler": study.sampling_options(bed, rows[key])[0], "per_seed": [], "gflops": 1.0,
                              "s_per_image": 0.1}
    path = tmp_path / "toy.json"
    study.time_on_cpu(bed, state, keys, 3, path, passes=3)
    assert len(set(order[:2])) == 2 and order[2:4] == order[1::-1] and order[4:] == order[:2]  # fwd, reversed, fwd
    for key in keys:
        passes = state["rows"][key]["cpu_s_per_image_passes"]
        assert len(passes) == 3 and state["rows"][key]["cpu_s_per_image"] == sorted(passes)[1]
    assert json.loads(path.read_text())["cpu_timing"]["passes"] == 3

    # a stop after one and a half rounds: the next run times the 3 missing (row, round) pairs only
    for key, kept in zip(keys, (2, 1)):
        state["rows"][key].pop("cpu_s_per_image")
        del state["rows"][key]["cpu_s_per_image_passes"][kept:]
    order.clear()
    study.time_on_cpu(bed, state, keys, 3, path, passes=3)
    assert len(order) == 3 and all(len(state["rows"][k]["cpu_s_per_image_passes"]) == 3 for k in keys)
    # other settings start the rounds over
    for key in keys:
        state["rows"][key].pop("cpu_s_per_image")
    order.clear()
    study.time_on_cpu(bed, state, keys, 3, path, passes=1)
    assert len(order) == 2 and all(len(state["rows"][k]["cpu_s_per_image_passes"]) == 1 for k in keys)
