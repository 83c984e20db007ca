"""The toy studies' Markdown report: every row, the paper's tables beside ours (16x16), the claims and verdicts."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping


from gtr.eval.paper import TABLE1, TABLE3, TABLE4, TABLE5, paper_values
from gtr.files import write_text
from gtr.study.toy.plots import ablation_plot, plot
from gtr.study.toy.rows import Row, Testbed, sampling_options
from gtr.study.toy.verdicts import claim_lines, stat


def _cells(row: Mapping, ref: Mapping | None, cpu: bool) -> dict[str, str]:
    fid, is_, acc = (stat(row["per_seed"], k) for k in ("fid_fmnist", "is_fmnist", "accuracy"))
    seconds = stat(row["per_seed"], "s_per_image")[0]
    gflops = row["gflops"]
    cells = {"steps": str(row["ar_steps"]), "gflops": f"{gflops:.3f}" if gflops < 10 else f"{gflops:.1f}",
             "speed": f"{ref['gflops'] / row['gflops']:.2f}x" if ref else "—",
             "time_speed": f"{stat(ref['per_seed'], 's_per_image')[0] / seconds:.2f}x"
             if ref and ref.get("device") == row.get("device") else "—",  # only times taken on one device
             "fid": f"{fid[0]:.2f} ± {fid[1]:.2f}", "is": f"{is_[0]:.2f} ± {is_[1]:.2f}",
             "acc": f"{acc[0]:.3f} ± {acc[1]:.3f}", "cpu_speed": "—"}
    if cpu and ref and "cpu_s_per_image" in ref and "cpu_s_per_image" in row:
        cells["cpu_speed"] = f"{ref['cpu_s_per_image'] / row['cpu_s_per_image']:.2f}x"
    return cells


def _header(state: Mapping, bed: Testbed) -> tuple[list[str], bool, str]:
    cpu = state.get("cpu_timing")
    timed_on = "CPU" if state["settings"].get("device", "cpu") == "cpu" else state["device"]
    lines = [f"# {bed.title}", "",
             f"Measured here: `{state.get('command', 'python scripts/toy_study.py')}` on {state.get('device', '?')}; "
             f"{state['settings']['samples']} samples per row and seed, seeds {state['settings']['seeds']}; mean ± std "
             "over seeds. FID/IS: the analogues from the shipped Fashion-MNIST classifier's features/logits (FID vs "
             f"{state.get('reference', 'the test split')}); accuracy: the classifier's agreement with the requested "
             f"class. Speed: FLOPs ratio to the reference row `{bed.reference_row}` (counted) and sampling-time ratios (the VAE and scoring not "
             f"timed): on {timed_on}, over the quality runs"
             + (f"; on the CPU ({cpu['device']}), {cpu['images']} images per row in one batch after a warm-up"
                + (f", the median of {cpu['passes']} rounds over all rows (interleaved)" if cpu.get("passes", 1) > 1
                   else "") if cpu else "") + "."]
    for added in state.get("added", []):
        timed = all("cpu_s_per_image" in state["rows"].get(k, {}) for k in added["rows"])
        lines += ["", f"Added later: rows {', '.join(f'`{k}`' for k in added['rows'])}, measured on {added['device']} "
                  f"(`{added['command']}`): the same samples and scorer, so quality compares; their time over the "
                  "quality runs does not (—), and " + ("their CPU timing was taken in that later run, not side by "
                  "side with the others." if timed else "they have no CPU timing (the others were timed on another "
                  "machine's CPU).")]
    return lines, bool(cpu), "CPU" if timed_on == "CPU" else "GPU"


def _all_rows_table(bed: Testbed, rows: Mapping, cpu: bool, timed: str) -> list[str]:
    ref = rows.get(bed.reference_row)
    lines = [f"| group | method | AR steps | GFLOPs/img | speed (FLOPs) | speed ({timed} time) | "
             + ("speed (CPU time) | " if cpu else "") + "FID (fmnist) | IS (fmnist) | accuracy |",
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if cpu else "")]
    for key, row in rows.items():
        c = _cells(row, ref, cpu)
        lines.append(f"| {row['group']} | {row['label']} | {c['steps']} | {c['gflops']} | {c['speed']} | "
                     f"{c['time_speed']} | " + (f"{c['cpu_speed']} | " if cpu else "")
                     + f"{c['fid']} | {c['is']} | {c['acc']} |")
    return lines


def _find(bed: Testbed, rows: Mapping, config: str, overrides: Mapping) -> str | None:
    """The measured row that runs exactly the sampler of (config, overrides) on this testbed."""
    from gtr.jobs.common import cache_record
    sampler, cache = sampling_options(bed, Row("", "", "", config, overrides))
    return next((key for key, row in rows.items()
                 if row["sampler"] == sampler and row.get("cache") == cache_record(cache).get("cache")), None)


def _paper_tables(bed: Testbed, rows: Mapping, cpu: bool) -> list[str]:
    """Tables 1, 3, 4, 5 in the paper's layout: ours (measured here) beside the paper's printed values (MAR-B for
    Table 1, MAR-H for Tables 3-5, as the paper reports them)."""
    paper = paper_values()
    ref = rows.get(bed.reference_row)
    speed_col = "speed (CPU time)" if cpu else "speed (time)"

    def ours(key: str | None) -> dict[str, str]:
        if key is None:
            return dict.fromkeys(("steps", "gflops", "speed", "time_speed", "cpu_speed", "fid", "is", "acc"), "—")
        c = _cells(rows[key], ref, cpu)
        c["time"] = c["cpu_speed"] if cpu else c["time_speed"]
        return c

    def num(v, fmt="{:.2f}"):
        return "—" if v is None else fmt.format(v)

    out = ["## Table 1 (one model): ours on the 16x16 testbed | the paper's MAR-B (ImageNet FID-50k)", "",
           f"| block | method | AR steps | GFLOPs/img | speed (FLOPs) | {speed_col} | FID (fmnist) | IS (fmnist) | "
           "accuracy | paper: speed | paper: FID | paper: IS |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for block, method, config, overrides in TABLE1:
        c = ours(_find(bed, rows, config, overrides))
        p = next((r for r in paper["table1"] if r["model"] == "mar_b" and r["block"] == block
                  and r["method"] == method), {})
        out.append(f"| {block} | {method} | {c['steps']} | {c['gflops']} | {c['speed']} | {c.get('time', '—')} | "
                   f"{c['fid']} | {c['is']} | {c['acc']} | {num(p.get('speed'))}x | {num(p.get('fid'))} | "
                   f"{num(p.get('is'), '{:.1f}')} |")
    out += ["", "## Table 3: GtR's components (ours | the paper's MAR-H)", "",
            f"| GtR* | GtR† | FTS | GFLOPs/img | speed (FLOPs) | {speed_col} | FID (fmnist) | IS (fmnist) | accuracy | "
            "paper: speed | paper: FID | paper: IS |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    mark = {True: "✓", False: ""}
    for flags, config, overrides in TABLE3:
        c = ours(_find(bed, rows, config, overrides))
        p = next((r for r in paper["table3"] if (r["gtr_star"], r["gtr_dagger"], r["fts"]) == flags), {})
        out.append(f"| {' | '.join(mark[f] for f in flags)} | {c['gflops']} | {c['speed']} | {c.get('time', '—')} | "
                   f"{c['fid']} | {c['is']} | {c['acc']} | {num(p.get('speed'))}x | {num(p.get('fid'))} | "
                   f"{num(p.get('is'), '{:.1f}')} |")
    out += ["", "## Table 4: which tokens FTS enhances (ours | the paper's MAR-H)", "",
            f"| method | GFLOPs/img | speed (FLOPs) | {speed_col} | FID (fmnist) | IS (fmnist) | accuracy | paper: speed | "
            "paper: FID | paper: IS |", "|---|---|---|---|---|---|---|---|---|---|"]
    for method, (config, overrides) in TABLE4.items():
        c = ours(_find(bed, rows, config, overrides))
        p = next((r for r in paper["table4"] if r["method"] == method), {})
        out.append(f"| {method} | {c['gflops']} | {c['speed']} | {c.get('time', '—')} | {c['fid']} | {c['is']} | "
                   f"{c['acc']} | {num(p.get('speed'))}x | {num(p.get('fid'))} | {num(p.get('is'), '{:.1f}')} |")
    out += ["", "## Table 5: token orders (ours | the paper's MAR-H)", "",
            "| order | FID (fmnist) | IS (fmnist) | accuracy | paper: FID | paper: IS |", "|---|---|---|---|---|---|"]
    for method, (config, overrides) in TABLE5.items():
        c = ours(_find(bed, rows, config, overrides))
        p = next((r for r in paper["table5"] if r["method"] == method), {})
        out.append(f"| {method} | {c['fid']} | {c['is']} | {c['acc']} | {num(p.get('fid'))} | "
                   f"{num(p.get('is'), '{:.1f}')} |")
    return out


def report(bed: Testbed, state: dict, out: Path) -> str:
    """Write ``<out>.md`` and the speed-quality plot from the measured state; returns the Markdown."""
    rows = state["rows"]
    lines, cpu, timed = _header(state, bed)
    f3 = state.get("figure3")
    samples = state["settings"]["samples"]
    if bed.paper_tables:
        premise = sorted((r for r in bed.rows if r.group in ("baseline", "attempt") and r.key in rows),
                         key=lambda r: (r.group != "baseline", -rows[r.key]["ar_steps"]))
        premise = [r.key for r in premise]
        lines += ["", "## Premise: does parallel decoding cost quality on this testbed?", "",
                  "The testbed is valid only if 8 AR steps are clearly worse than 64 (beyond the seed spread). "
                  "Attempt 1 ran the baselines at CFG 4.0, the guidance scale with the best FID analogue (rows "
                  "\"premise attempt 1\"); attempt 2, the testbed's setting since (the model config's default_cfg "
                  "1.0, so every paper config runs unguided), runs them without guidance.", ""]
        lines += _all_rows_table(bed, {k: rows[k] for k in premise}, cpu, timed)
        lines += ["", "## The paper's claims at this scale", ""] + claim_lines(bed.claims, rows, samples, f3)
        lines += [""] + _paper_tables(bed, rows, cpu)
        lines += ["", "## Every row measured", ""] + _all_rows_table(bed, rows, cpu, timed)
    else:
        lines += [""] + _all_rows_table(bed, rows, cpu, timed)
        lines += ["", "## The paper's claims at this scale", ""] + claim_lines(bed.claims, rows, samples, f3)
    if "figure3" in state:
        f3 = state["figure3"]
        lines += ["", "## Figure 3: what a half-decoded image pins down", "",
                  f"| given half | pixel std across {f3['checkerboard']['seeds']} seeds | feature std across "
                  f"{f3['checkerboard']['seeds']} seeds |", "|---|---|---|"]
        for pattern, v in f3.items():
            lines.append(f"| {pattern} | {v['pixel_std_mean']:.4f} ± {v['pixel_std_sem']:.4f} | "
                         f"{v['feature_std_mean']:.4f} ± {v['feature_std_sem']:.4f} |")
        lines += ["", f"![Figure 3 strips]({out.name}_figure3.png)"]
    if rows.get(bed.reference_row):
        plot(bed, rows, out.with_name(f"{out.name}_speed_quality.png"))
        lines += ["", f"![speed against quality]({out.name}_speed_quality.png)"]
        if ablation_plot(bed, rows, out.with_name(f"{out.name}_ablations.png")):
            lines += ["", f"![the ablations against {bed.ablation_base}]({out.name}_ablations.png)"]
    text = "\n".join(lines) + "\n"
    write_text(out.with_suffix(".md"), text)
    return text
