"""The benchmarks that set and check mode=auto's threshold: scripts/bench_latency.py (break-even images, the 50k-run
cost) and scripts/bench_job_modes.py (the real generation job in each mode)."""
import json
import subprocess
import sys

import pytest

from conftest import REPO, run_env
from gtr.eval.latency import add_break_even, break_even_cell
from gtr.sampling.compiled import AUTO_COMPILE_MIN_IMAGES


def row(sampler, mode, s_per_image, startup=None):
    return {"sampler": sampler, "mode": mode, "s_per_image": s_per_image, "startup_s": startup}


def test_break_even_counts_one_compilation_per_process():
    rows = [row("gtr", "eager", 0.02), row("mar", "eager", 0.08), row("gtr", "compile", 0.01, startup=50.0),
            row("mar", "compile", 0.05, startup=5.0), row("gtr_8", "compile", 0.005, startup=1.0)]
    add_break_even(rows)
    gtr, mar, gtr_8 = rows[2:]
    assert gtr["break_even_images"] == pytest.approx(50.0 / 0.01)
    assert mar["break_even_images"] == pytest.approx(50.0 / 0.03)  # the process's compilation, not mar's extra 5 s
    assert gtr["s_per_image_50k"] == pytest.approx(0.01 + 50.0 / 50_000)
    assert gtr_8["s_per_image_50k"] == pytest.approx(0.005 + 50.0 / 50_000)
    assert "break_even_images" not in gtr_8  # no eager row to compare with
    assert [break_even_cell(r) for r in rows] == ["—", "—", "5,000", "1,667", "—"]
    assert "break_even_images" not in rows[0] and "s_per_image_50k" not in rows[0]


def test_break_even_is_none_where_compiling_saves_nothing():
    rows = [row("gtr", "eager", 0.01), row("gtr", "compile", 0.012, startup=30.0)]
    add_break_even(rows)
    assert rows[1]["break_even_images"] is None and break_even_cell(rows[1]) == "never"


def test_an_eager_run_writes_its_table(tmp_path):
    run = subprocess.run([sys.executable, "scripts/bench_latency.py", "--models", "mar_tiny", "--batch", "2",
                          "--samplers", "gtr_8", "mar_8", "--repeats", "1", "--device", "cpu",
                          "--out-dir", str(tmp_path)], cwd=REPO, capture_output=True, text=True, env=run_env(),
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((tmp_path / "latency_cpu_mar_tiny_fp32_b2.json").read_text())
    assert [r["sampler"] for r in result["rows"]] == ["gtr_8", "mar_8"] and result["inductor_cache"] is None
    assert all(r["median_s"] > 0 and "break_even_images" not in r for r in result["rows"])
    table = (tmp_path / "latency_cpu_mar_tiny_fp32_b2.md").read_text()
    assert "| gtr_8 | eager |" in table and "| mar_8 | eager |" in table


def test_the_job_benchmark_times_generate_and_fits_a_line(tmp_path):
    run = subprocess.run([sys.executable, "scripts/bench_job_modes.py", "--model", "mar_tiny", "--sampler", "gtr_8",
                          "--images", "1", "3", "--modes", "eager", "--out-dir", str(tmp_path),
                          "--work-dir", str(tmp_path / "work")], cwd=REPO, capture_output=True, text=True,
                         env=run_env(), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((tmp_path / "job_modes_cpu_mar_tiny_gtr_8.json").read_text())
    assert [(r["mode"], r["images"]) for r in result["runs"]] == [("eager", 1), ("eager", 3)]
    assert all(0 < r["render_s"] < r["wall_s"] for r in result["runs"])
    fit = result["fits"]["eager"]
    for r in result["runs"]:  # two points: the line goes through both
        assert fit["startup_s"] + r["images"] * fit["s_per_image"] == pytest.approx(r["render_s"], abs=1e-6)
    table = (tmp_path / "job_modes_cpu_mar_tiny_gtr_8.md").read_text()
    assert "| images | eager render s | eager wall s |\n" in table and "`scripts/generate.py` (batch 64, fp32)" in table
    assert f"when this ran (`AUTO_COMPILE_MIN_IMAGES`): compile from {AUTO_COMPILE_MIN_IMAGES['cpu']:,} images" in table
    assert not list((tmp_path / "work").iterdir())  # the runs' images and caches are removed


@pytest.mark.parametrize("argv, message", [(["--images", "5"], "two or more different positive counts"),
                                           (["--modes", "compile"], "--modes needs eager")])
def test_the_job_benchmark_rejects_bad_options_in_one_line(argv, message):
    run = subprocess.run([sys.executable, "scripts/bench_job_modes.py", *argv], cwd=REPO, capture_output=True,
                         text=True, env=run_env(), timeout=300)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
