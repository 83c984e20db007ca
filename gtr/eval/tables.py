"""The paper's Tables 1-5 (and Table 1's speed-quality plot) from what has been measured, each cell beside the paper's
value and labelled by where it comes from (``scripts/make_tables.py`` is the command).

Sources: FLOPs from results/flops.json (``scripts/bench_flops.py``: counted on the real modules), latency from
results/latency_*.json (``scripts/bench_latency.py``: the device is named in the file), FID/IS from the
results.json of ``scripts/generate.py`` runs (50k images on ImageNet; smaller runs are flagged), GenEval scores
from run records with a ``geneval`` field (the text-to-image pipeline writes them), paper values from
gtr/eval/paper_values.json. A cell reads "ours / paper"; "—" where nothing was measured.
"""
from __future__ import annotations

import glob
import json
import statistics
from pathlib import Path

from gtr.errors import GtRError
from gtr.eval.paper import TABLE1, TABLE3, TABLE4, TABLE5, paper_values
from gtr.models.registry import REGISTRY

from gtr.files import REPO_ROOT

RESULTS = REPO_ROOT / "results"  # benchmark records (flops.json, latency_*.json) and where the tables go
# The paper's ImageNet models (MAR-B/L/H), in registry order.
MODEL_NAMES = {k: p.config.title for k, p in REGISTRY.items() if p.config.class_names == "imagenet"}

FULL_EVAL = 50_000
GENEVAL_IMAGES = 553 * 4


def agrees(options: dict, expected: dict) -> bool:
    """Whether a run's sampler options agree with a row's resolved ones wherever the row states them."""
    return all(expected.get(k, v) == v for k, v in options.items())


def load_json(path: Path):
    """A JSON file's content (None when absent), or one line naming a file that is not JSON."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GtRError(f"{path} is not JSON ({err}): re-run the job that wrote it, or move it out of the --runs "
                       "patterns") from None


class Measured:
    """Everything measured, indexed by (model, sampler config, overrides)."""

    def __init__(self, run_globs: list[str]):
        self.flops = {(r["model"], r["config"], json.dumps(r.get("overrides", {}), sort_keys=True)): r
                      for r in load_json(RESULTS / "flops.json") or []}
        self.latency = []
        for path in sorted(RESULTS.glob("latency_*.json")):
            data = load_json(path)
            eager = [row for row in data["rows"] if row.get("mode", "eager") == "eager"]  # the paper's tables
            for row in eager:
                per_image = row.get("s_per_image", row["median_s"] / data["batch"])
                device = f"{data['device']} (batch {data['batch']}, {data.get('precision', 'fp32')})"
                self.latency.append({**row, "s_per_image": per_image, "model": data["model"], "device": device,
                                     "gpu": not path.stem.startswith("latency_cpu"), "rows_in_file": len(eager)})
        self.runs, self.all_records = {}, []
        for pattern in run_globs:
            for path in sorted(glob.glob(pattern, recursive=True)):
                record = load_json(Path(path))
                self.all_records.append(record)
                if record.get("metrics") and record.get("sampler_config"):
                    key = (record["model"], record["sampler_config"])
                    self.runs.setdefault(key, []).append(record)

    def flops_row(self, model: str, config: str, overrides: dict):
        return self.flops.get((model, config, json.dumps(overrides, sort_keys=True)))

    def latency_s(self, model: str, config: str, overrides: dict, gpu: bool):
        """Seconds per image of a config as the latency benchmark runs it (its defaults: rows with overrides have
        none), from the file benchmarking the most samplers side by side for that model and kind (CPU or GPU), so a
        table row's cells come from one run."""
        rows = sorted((r for r in self.latency if r["model"] == model and r["sampler"] == config
                       and r["gpu"] == gpu and not overrides), key=lambda r: -r["rows_in_file"])
        return (rows[0]["s_per_image"], rows[0]["device"]) if rows else (None, None)

    def quality(self, model: str, config: str, overrides: dict):
        """Mean FID and IS over the seeds of the runs of this config: the run's sampler options must agree with the
        config's resolved options (from flops.json) or at least with the row's overrides."""
        f = self.flops_row(model, config, overrides)
        expected = f["sampler_config"] if f else overrides
        records = [r for r in self.runs.get((model, config), [])
                   if agrees(r["sampler"], expected) and all(r["sampler"].get(k) == v for k, v in overrides.items())]
        if not records:
            return None
        fids = [r["metrics"].get("fid") for r in records if r["metrics"].get("fid") is not None]
        iss = [r["metrics"].get("is") for r in records if r["metrics"].get("is") is not None]
        if not fids:
            return None
        return {"fid": sum(fids) / len(fids), "is": sum(iss) / len(iss) if iss else None, "seeds": len(records),
                "images": min(r["num_images"] for r in records), "device": records[0]["device"]}


def cell(ours, paper, fmt: str = "{:.2f}", tag: str = "") -> str:
    left = "—" if ours is None else fmt.format(ours) + tag
    right = "—" if paper is None else fmt.format(paper)
    return f"{left} / {right}"


def quality_cells(q, paper_row) -> tuple[str, str]:
    if q is None:
        return cell(None, paper_row.get("fid")), cell(None, paper_row.get("is"), "{:.1f}")
    tag = "" if q["images"] >= FULL_EVAL else f" (n={q['images']})"
    return cell(q["fid"], paper_row.get("fid"), tag=tag), cell(q["is"], paper_row.get("is"), "{:.1f}")


def header(title: str, columns: list[str]) -> list[str]:
    return [f"# {title}", "", "Each cell: **ours / paper**. Ours: FLOPs counted on the real modules "
            "(`scripts/bench_flops.py`); latency measured by `scripts/bench_latency.py` on the device named below; "
            "FID/IS from `scripts/generate.py` runs (`(n=...)` marks fewer than 50,000 images). Paper: copied from "
            "arXiv 2510.17171 for comparison. — : not measured here.", "",
            "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def table1(m: Measured, paper: dict) -> tuple[list[str], list[dict]]:
    lines = header("Table 1: MAR on ImageNet 256 (class-conditional)",
                   ["model", "block", "method", "sampler", "GPU latency (s)", "CPU latency (s)", "TFLOPs", "Speed",
                    "FID", "IS"])
    points, devices = [], set()
    for model in MODEL_NAMES:
        for block, method, config, overrides in TABLE1:
            row = next((r for r in paper["table1"] if r["model"] == model and r["block"] == block
                        and r["method"] == method), None)
            if row is None:
                continue
            f = m.flops_row(model, config, overrides)
            gpu, gpu_dev = m.latency_s(model, config, overrides, True)
            cpu, cpu_dev = m.latency_s(model, config, overrides, False)
            devices |= {d for d in (gpu_dev, cpu_dev) if d}
            q = m.quality(model, config, overrides)
            fid, is_ = quality_cells(q, row)
            label = config + "".join(f" {k}={v}" for k, v in overrides.items())
            lines.append(f"| {MODEL_NAMES[model]} | {block} | {method} | `{label}` | {cell(gpu, row['gpu_s'])} | "
                         f"{cell(cpu, row['cpu_s'])} | {cell(f and f['tflops'], row['tflops'])} | "
                         f"{cell(f and f['speed'], row['speed'])} | {fid} | {is_} |")
            if q:
                points.append({"model": model, "method": f"{method} ({block})", "speed": f and f["speed"], **q})
    lines += ["", "Latency devices: " + (", ".join(sorted(devices)) or "none measured yet"),
              "FLOPs and Speed notes (DiSA's row is 24 AR steps, etc.): results/flops.md."]
    return lines, points


GENEVAL_TASKS = ["single_object", "two_object", "colors", "counting", "position", "color_attr", "overall"]
# Paper row -> the sampler configs that run it on LightGen (the first names the row; on model=lightgen, sampler=mar,
# mar_16 and gtr take the model's Table 2 settings and are the same runs). LazyMAR rows are our port.
TABLE2 = {("32", "LightGen, 32"): ("lightgen_32", "mar"), ("16", "+Step=16"): ("lightgen_16", "mar_16"),
          ("16", "+LazyMAR"): ("lazymar_lightgen_16",), ("16", "+GtR (Ours)"): ("gtr_lightgen", "gtr"),
          ("12", "+Step=12"): ("lightgen_12",), ("12", "+LazyMAR"): ("lazymar_lightgen_12",),
          ("12", "+GtR (Ours)"): ("gtr_lightgen_12",)}


def table2(m: Measured, paper: dict) -> list[str]:
    """LightGen at 512 px on GenEval: ours from ``scripts/geneval.py`` run records (``geneval`` field), mean over
    seeds (± their standard deviation); Speed = GPU latency of the 32-step row / the row's."""
    lines = header("Table 2: LightGen 512 px on GenEval",
                   ["block", "method", "sampler", "GPU latency (s)", "Speed", "FLOPs speed", *GENEVAL_TASKS,
                    "runs (evaluator)"])
    lines[2] = ("Each cell: **ours / paper**. Ours: GenEval from `scripts/geneval.py` run records (mean ± std over "
                "seeds); latency from `scripts/bench_latency.py --models lightgen` on the device named below; FLOPs "
                "speed counted by `scripts/bench_flops.py` (results/flops_lightgen.md; the paper gives none). "
                "Paper: copied from arXiv 2510.17171 for comparison. — : not measured here.")
    counted = load_json(RESULTS / "flops_lightgen.json") or []
    flops = {r["config"]: r["speed"] for r in counted}
    options = {r["config"]: r["sampler_config"] for r in counted}  # each row's resolved sampler options
    reference, _ = m.latency_s("lightgen", TABLE2[("32", "LightGen, 32")][0], {}, True)
    devices = set()
    for row in paper["table2"]:
        configs = TABLE2.get((row["block"], row["method"]))
        if configs is None:
            lines.append(f"| {row['block'] or '—'} | {row['method']} | (other model, paper only) | "
                         f"{cell(None, row['gpu_s'])} | {cell(None, row['speed'])} | — | "
                         + " | ".join(cell(None, row[t]) for t in GENEVAL_TASKS) + " | — |")
            continue
        records = geneval_runs(m, configs, options.get(configs[0], {}))
        latency, device = m.latency_s("lightgen", configs[0], {}, True)
        devices |= {device} if device else set()
        speed = reference / latency if latency and reference else None
        cells = " | ".join(geneval_cell(records, t, row[t]) for t in GENEVAL_TASKS)
        runs = "—"
        if records:
            images = min(r["num_images"] for r in records)
            runs = (f"{len(records)} ({records[0]['evaluator']}; {images} images"
                    + (")" if images >= GENEVAL_IMAGES else ": fewer than the full 2,212)"))
        method = row["method"] + (" (our port)" if "LazyMAR" in row["method"] else "")
        lines.append(f"| {row['block']} | {method} | `{configs[0]}` | {cell(latency, row['gpu_s'])} | "
                     f"{cell(speed, row['speed'])} | {cell(flops.get(configs[0]), None)} | {cells} | {runs} |")
    lines += ["", "Latency device: " + (", ".join(sorted(devices)) or "none measured yet") + ". SD/LlamaGen rows "
              "are the paper's citations (not reproduced); its Param column (\"3.4B\") matches no count of LightGen "
              "(0.79B, or 5.6B with T5) and is left out.",
              "\"GenEval\" = the official evaluator's detector weights (converted from mmdet); \"GenEval (HF "
              "detector)\" = a hub Mask2Former with other weights: its scores are not comparable to the paper's."]
    return lines


def geneval_runs(m: Measured, configs: tuple[str, ...], expected: dict) -> list[dict]:
    """The scored LightGen runs of a row: its configs, sampler options agreeing with the row's (a sweep's
    overrides are other rows), one evaluator (the official detector's weights when any run has them: scores of the
    two detectors are never averaged)."""
    runs = [r for r in m.all_records if r.get("model") == "lightgen" and r.get("sampler_config") in configs
            and r.get("geneval") and agrees(r["sampler"], expected)]
    evaluators = sorted({r.get("evaluator") for r in runs})
    chosen = "GenEval" if "GenEval" in evaluators else (evaluators[0] if evaluators else None)
    return [r for r in runs if r.get("evaluator") == chosen]


def geneval_cell(records: list[dict], task: str, paper) -> str:
    values = [r["geneval"][task] for r in records if task in r["geneval"]]
    if not values:
        return cell(None, paper)
    mean = sum(values) / len(values)
    spread = f"±{statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return cell(mean, paper, tag=spread)


def table3(m: Measured, paper: dict) -> list[str]:
    lines = header("Table 3: GtR* / GtR† / FTS ablation (MAR-H)",
                   ["GtR*", "GtR†", "FTS", "sampler", "TFLOPs", "Speed", "FID", "IS"])
    for row in paper["table3"]:
        key = (row["gtr_star"], row["gtr_dagger"], row["fts"])
        match = next(((c, o) for k, c, o in TABLE3 if k == key), None)
        flags = " | ".join("✓" if v else "✗" for v in key)
        if match is None:
            lines.append(f"| {flags} | (schedule not given by the paper) | {cell(None, row['tflops'])} | "
                         f"{cell(None, row['speed'])} | {cell(None, row['fid'])} | {cell(None, row['is'], '{:.1f}')} |")
            continue
        lines.append(f"| {flags} | {mar_h_cells(m, row, *match)} |")
    return lines


def mar_h_cells(m: Measured, row: dict, config: str, overrides: dict) -> str:
    """The sampler, TFLOPs, Speed, FID and IS cells of a MAR-H ablation row."""
    f = m.flops_row("mar_h", config, overrides)
    fid, is_ = quality_cells(m.quality("mar_h", config, overrides), row)
    label = config + "".join(f" {k}={v}" for k, v in overrides.items())
    return (f"`{label}` | {cell(f and f['tflops'], row['tflops'])} | {cell(f and f['speed'], row['speed'])} | "
            f"{fid} | {is_}")


def table4(m: Measured, paper: dict) -> list[str]:
    lines = header("Table 4: FTS token selection (MAR-H)", ["method", "sampler", "TFLOPs", "Speed", "FID", "IS"])
    for row in paper["table4"]:
        lines.append(f"| {row['method']} | {mar_h_cells(m, row, *TABLE4[row['method']])} |")
    return lines


def table5(m: Measured, paper: dict) -> list[str]:
    lines = header("Table 5: token order (MAR-H)", ["order", "sampler", "FID", "IS"])
    for row in paper["table5"]:
        config, overrides = TABLE5[row["method"]]
        fid, is_ = quality_cells(m.quality("mar_h", config, overrides), row)
        lines.append(f"| {row['method']} | `{config}` | {fid} | {is_} |")
    return lines


def plot(points: list[dict], paper: dict, path: Path) -> None:
    """FID against FLOPs speed-up: the paper's Table 1 points, and ours where measured."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for model, colour in zip(MODEL_NAMES, ("tab:blue", "tab:orange", "tab:green")):
        rows = [r for r in paper["table1"] if r["model"] == model]
        ax.scatter([r["speed"] for r in rows], [r["fid"] for r in rows], marker="o", facecolors="none",
                   edgecolors=colour, label=f"{MODEL_NAMES[model]} (paper)")
        ours = [p for p in points if p["model"] == model and p["speed"]]
        if ours:
            ax.scatter([p["speed"] for p in ours], [p["fid"] for p in ours], marker="*", s=80, color=colour,
                       label=f"{MODEL_NAMES[model]} (ours)")
    ax.set_xlabel("Speed (FLOPs ratio to 64 steps)")
    ax.set_ylabel("FID-50k")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Table 1: quality against speed")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


TABLES = ("table1", "table2", "table3", "table4", "table5")


def write_tables(run_patterns: list[str], out: Path = RESULTS) -> str:
    """Write ``table1.md`` ... ``table5.md`` and ``table1_speed_fid.png`` into ``out`` from the run records that
    ``run_patterns`` (globs) match; returns a one-line account of what was written."""
    paper = paper_values()
    measured = Measured(run_patterns)
    out.mkdir(parents=True, exist_ok=True)
    lines1, points = table1(measured, paper)
    written = {"table1": lines1, "table2": table2(measured, paper), "table3": table3(measured, paper),
               "table4": table4(measured, paper), "table5": table5(measured, paper)}
    for name in TABLES:
        (out / f"{name}.md").write_text("\n".join(written[name]) + "\n")
    plot(points, paper, out / "table1_speed_fid.png")
    return (f"wrote {', '.join(f'{n}.md' for n in TABLES)} and table1_speed_fid.png in {out} "
            f"({sum(len(v) for v in measured.runs.values())} scored runs)")
