"""The scenes study's report: Markdown tables in the paper's layout with the paper's values beside ours, the claims
with their verdicts, and the plots (quality against FLOPs per method family; a sample grid of key rows)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from gtr.images import pyplot
from gtr.eval.paper import TABLE1, TABLE3, TABLE4, TABLE5, paper_values
from gtr.study.scenes import FAMILIES, MARGIN, ROW, ROWS, best_cfg, counts, premise, verdicts
from gtr.study.statistics import wilson

FAILURE_KINDS = ("count", "shape", "colour", "mixed", "stray", "background")
MARKERS = {"mar": ("o", "tab:blue"), "halton": ("^", "tab:green"), "disa": ("s", "tab:purple"),
           "lazymar": ("D", "tab:brown"), "gtr": ("*", "tab:red")}


def _find(rows: Mapping, config: str, overrides: Mapping) -> str | None:
    """The study row running ``config`` with ``overrides`` (the paper tables' definition of a row)."""
    return next((r.key for r in ROWS if r.config == config and dict(r.overrides) == dict(overrides)
                 and r.key in rows and rows[r.key]["per_seed"]), None)


def _mean(record: Mapping, key: str) -> float:
    values = [s[key] for s in record["per_seed"]]
    return sum(values) / len(values)


def cells(rows: Mapping, key: str | None, reference: str = "mar") -> dict[str, str]:
    """A measured row's cells: AR steps, GFLOPs, speed-ups (FLOPs, time) against ``reference``, validity with its
    95 % Wilson interval, FID/KID analogues (mean over seeds), accuracy."""
    empty = dict.fromkeys(("steps", "gflops", "speed", "time", "valid", "fid", "kid", "acc"), "—")
    if key is None or key not in rows or not rows[key]["per_seed"] or "gflops" not in rows[key]:
        return empty
    r, ref = rows[key], rows.get(reference)
    k, n = counts(r)
    lo, hi = wilson(k, n)
    out = {"steps": str(r["ar_steps"]), "gflops": f"{r['gflops']:.2f}", "valid": f"{k / n:.1%} [{lo:.1%}, {hi:.1%}]",
           "fid": f"{_mean(r, 'fid_scenes'):.2f}", "kid": f"{_mean(r, 'kid_scenes') * 1e3:.2f}",
           "acc": f"{_mean(r, 'accuracy'):.1%}", "speed": "—", "time": "—"}
    if ref and ref.get("per_seed") and "gflops" in ref:
        out["speed"] = f"{ref['gflops'] / r['gflops']:.2f}x"
        out["time"] = f"{_mean(ref, 's_per_image') / _mean(r, 's_per_image'):.2f}x"
    return out


def _num(value, fmt: str = "{:.2f}") -> str:
    return "—" if value is None else fmt.format(value)


OURS = "AR steps | GFLOPs/img | speed (FLOPs) | speed (time) | valid [95 % CI] | FID (scenes) | KID×10³ | accuracy"


def _ours(c: Mapping) -> str:
    return " | ".join(c[k] for k in ("steps", "gflops", "speed", "time", "valid", "fid", "kid", "acc"))


def paper_tables(rows: Mapping) -> list[str]:
    paper = paper_values()
    out = ["## Table 1: ours (mar_scenes) | the paper's MAR-B (ImageNet FID-50k)", "",
           f"| block | method | {OURS} | paper: speed | paper: FID |", "|---" * 12 + "|"]
    for block, method, config, overrides in TABLE1:
        p = next((r for r in paper["table1"] if r["model"] == "mar_b" and r["block"] == block
                  and r["method"] == method), {})
        out.append(f"| {block} | {method} | {_ours(cells(rows, _find(rows, config, overrides)))} | "
                   f"{_num(p.get('speed'))}x | {_num(p.get('fid'))} |")
    out += ["", "## Table 3: GtR's components (ours | the paper's MAR-H)", "",
            f"| GtR* | GtR† | FTS | {OURS} | paper: speed | paper: FID |", "|---" * 13 + "|"]
    for flags, config, overrides in TABLE3:
        p = next((r for r in paper["table3"] if (r["gtr_star"], r["gtr_dagger"], r["fts"]) == flags), {})
        marks = " | ".join("✓" if f else "" for f in flags)
        out.append(f"| {marks} | {_ours(cells(rows, _find(rows, config, overrides)))} | {_num(p.get('speed'))}x | "
                   f"{_num(p.get('fid'))} |")
    out += ["", "## Table 4: which tokens FTS enhances (ours | the paper's MAR-H)", "",
            f"| method | {OURS} | paper: speed | paper: FID |", "|---" * 11 + "|"]
    for method, (config, overrides) in TABLE4.items():
        p = next((r for r in paper["table4"] if r["method"] == method), {})
        out.append(f"| {method} | {_ours(cells(rows, _find(rows, config, overrides)))} | {_num(p.get('speed'))}x | "
                   f"{_num(p.get('fid'))} |")
    out += ["", "## Table 5: token orders (ours | the paper's MAR-H)", "",
            f"| order | {OURS} | paper: FID |", "|---" * 10 + "|"]
    for method, (config, overrides) in TABLE5.items():
        p = next((r for r in paper["table5"] if r["method"] == method), {})
        out.append(f"| {method} | {_ours(cells(rows, _find(rows, config, overrides)))} | {_num(p.get('fid'))} |")
    return out


def _rows_table(rows: Mapping, keys: Sequence[str], title: str) -> list[str]:
    keys = [k for k in keys if k in rows and rows[k]["per_seed"]]
    if not keys:
        return []
    out = [f"## {title}", "", f"| row | {OURS} | " + " | ".join(FAILURE_KINDS) + " |",
           "|---" * (9 + len(FAILURE_KINDS)) + "|"]
    for key in keys:
        r = rows[key]
        failures = " | ".join(f"{_mean(r, f'fail_{kind}'):.1%}" if f"fail_{kind}" in r["per_seed"][0] else "—"
                              for kind in FAILURE_KINDS)
        out.append(f"| {ROW[key].label} | {_ours(cells(rows, key))} | {failures} |")
    return out + [""]


def _claims_table(decided: Sequence[Mapping]) -> list[str]:
    out = ["| claim | a vs b | metric | a | b | difference (a − b, + = a better) [95 % CI] | test | p (Holm) | "
           "verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for c in decided:
        pct = c["metric"] == "exact validity"
        f = (lambda v: f"{v:+.1%}") if pct else (lambda v: f"{v:+.2f}")
        value = (lambda v: f"{v:.1%}") if pct else (lambda v: f"{v:.2f}")
        margin = f"{c['margin'] * 100:.0f} points" if pct else f"{c['margin']:g}"
        kind = f"{'non-inferiority' if c['kind'] == 'noninferior' else 'superiority'}, margin {margin}"
        p = c["p_holds_holm"] if c["verdict"] != "does not hold" else c["p_fails_holm"]
        out.append(f"| {c['claim']} | {c['a']} vs {c['b']} | {c['metric']} | {value(c['a_value'])} | "
                   f"{value(c['b_value'])} | {f(c['difference'])} [{f(c['ci'][0])}, {f(c['ci'][1])}] | "
                   f"{c['test']}, {kind} | {p:.3g} | **{c['verdict']}** |")
    return out + [""]


def _premise_lines(study: Mapping) -> list[str]:
    state = study["current"]
    gate = premise(state)
    out = ["## The premise gate", "",
           "The testbed decides the paper's claims only if parallel decoding visibly costs quality here: under the "
           "model's CFG and unguided alike, exact validity at 8 AR steps at least 10 points below 64 steps (95 % CI "
           "of the drop above 0), and 64-step samples valid at least 70 % of the time.", ""]
    out += ["| regime | valid at 64 | valid at 8 | drop [95 % CI] | passed |", "|---|---|---|---|---|"]
    for name in ("guided", "unguided"):
        g = gate.get(name)
        if g:
            out.append(f"| {name} | {g['valid_64']:.1%} | {g['valid_8']:.1%} | {g['drop']:.1%} "
                       f"[{g['ci'][0]:.1%}, {g['ci'][1]:.1%}] | {'yes' if g['passed'] else '**no**'} |")
        else:
            out.append(f"| {name} | — | — | — | not measured |")
    out += ["", f"**Gate: {'passed' if gate['passed'] else 'not passed'}.**", ""]
    pick = best_cfg(state)
    if pick:
        scales = ", ".join(f"{c:g}: {v:.1%} of {pick['images'][c]:,}" for c, v in sorted(pick["valid"].items()))
        guided = state.get("rows", {}).get("mar", {}).get("sampler", {}).get("cfg")
        out += [f"Guidance sweep (64 AR steps; exact validity by CFG scale: {scales}): the best scale is "
                f"**{pick['cfg']:g}**" + (f"; the guided rows ran at the model's default_cfg {guided:g}"
                                          if guided is not None else "") +
                ("" if guided is None or float(guided) == pick["cfg"] else
                 " (not the sweep's pick: set default_cfg in gtr/models/registry.py and re-run)") + ".", ""]
    for i, attempt in enumerate(study.get("attempts", []), 1):
        g = attempt["premise"]
        words = ", ".join(f"{name}: 64 → 8 steps {g[name]['valid_64']:.1%} → {g[name]['valid_8']:.1%}"
                          for name in ("guided", "unguided") if name in g) or "premise rows not measured"
        out.append(f"- Earlier attempt {i} (model {attempt['model']}): {words}; gate "
                   f"{'passed' if g.get('passed') else 'not passed'}.")
    return out + [""]


def report(study: Mapping, path: Path) -> str:
    """Write ``path`` (.md) and the plots beside it; return the Markdown."""
    state = study["current"]
    rows = state["rows"]
    settings = state["settings"]
    decided = verdicts(state)
    lines = ["# Does GtR hold? The paper's claims on the scenes testbed", "",
             "Generated by `python scripts/scenes_study.py` (every number measured here; the paper's values are "
             "printed beside ours for comparison, never measured). Model `mar_scenes` (weights "
             f"{state['model']}), {settings['samples']} class-balanced images per seed, seeds "
             f"{settings['seeds']}, batch size {settings['batch_size']}, mode {settings['mode']}. "
             "Validity is the exact scorer's verdict per image (gtr/eval/scenes.py); FID/KID (scenes) are "
             "analogues in the features of the scenes classifier against the 10,000 test scenes.", "",
             f"Verdicts: **holds** / **does not hold** / **undecided** from one-sided tests at 5 %, Holm-corrected "
             f"within each table. \"Keeps quality\" claims are non-inferiority tests (they do not hold when a is worse "
             f"by more than {MARGIN * 100:.0f} points of validity); \"beats\" claims are superiority tests (they hold "
             f"when a is better at all, and do not hold when a's advantage is shown to be below {MARGIN * 100:.0f} "
             "points). Validity compares images "
             "(two-proportion z-test, Newcombe interval); the FID analogue compares seeds (Welch).", ""]
    runs = state.get("runs", [])
    if runs:
        distinct = list(dict.fromkeys(f"`{r['command']}` on {r['device']} ({r['mode']})" for r in runs))
        lines += ["Runs (the last three): " + "; ".join(distinct[-3:]), ""]
    lines += _premise_lines(study)
    lines += _rows_table(rows, [r.key for r in ROWS if r.table in ("premise", "cfg")],
                         "Premise and guidance rows")
    lines += paper_tables(rows)
    for table, title in (("table1", "Table 1 claims"), ("table3", "Table 3 claims"), ("table4", "Table 4 claims"),
                         ("table5", "Table 5 claims"), ("frontier", "Iso-FLOPs: does GtR dominate?"),
                         ("cached", "Not in the paper: LazyMAR's caches on other schedules")):
        if decided.get(table):
            lines += ["", f"## {title}", ""] + _claims_table(decided[table])
    lines += _rows_table(rows, [r.key for r in ROWS if r.table == "frontier" or r.family in FAMILIES],
                         "Every operating point (the frontier)")
    lines += _rows_table(rows, [r.key for r in ROWS if r.table == "sweeps"] + ["gtr_16"],
                         "GtR's hyperparameters around GtR-16")
    if decided.get("figure3"):
        f3 = state["figure3"]
        lines += ["", "## Figure 3: which half pins the image down?", "",
                  f"{f3['images']} samples of the 64-step baseline; half of each one's tokens given (checkerboard or "
                  f"the top block), the rest completed with {f3['seeds']} seeds in {f3['completion_steps']} AR steps. "
                  "Spread = per image, the std of its pixels across seeds, averaged (± standard error).", "",
                  "| given half | pixel spread | completions valid |", "|---|---|---|"]
        lines += [f"| {p} | {f3[p]['pixel_std_mean']:.4f} ± {f3[p]['pixel_std_sem']:.4f} | "
                  f"{f3[p]['valid'] / f3[p]['completions']:.1%} of {f3[p]['completions']:,} |"
                  for p in ("checkerboard", "block")]
        lines += [""] + _claims_table(decided["figure3"])
        if path.with_name(f"{path.stem}_figure3.png").is_file():
            lines += ["", f"![Figure 3 on the scenes]({path.stem}_figure3.png)", ""]
    if plot_frontier(rows, path.with_name(f"{path.stem}_frontier.png")):
        lines += ["![validity against FLOPs](" + f"{path.stem}_frontier.png)", ""]
    if path.with_name(f"{path.stem}_samples.png").is_file():
        lines += ["## Samples (seed 0, one per class; captions: the exact scorer's verdict)", "",
                  f"![samples of key rows]({path.stem}_samples.png)", ""]
    text = "\n".join(lines) + "\n"
    from gtr.files import write_text
    write_text(path, text)
    return text


def plot_frontier(rows: Mapping, path: Path) -> bool:
    """Exact validity (Wilson 95 % bars) against GFLOPs per image, one line per method family (guided rows)."""
    points = {f: [] for f in FAMILIES}
    for key, r in rows.items():
        row = ROW.get(key)
        if row and row.family in points and r["per_seed"] and "gflops" in r and "unguided" not in key \
                and "cfg" not in row.overrides:
            k, n = counts(r)
            lo, hi = wilson(k, n)
            points[row.family].append((r["gflops"], k / n, max(0.0, k / n - lo), max(0.0, hi - k / n)))
    if not any(points.values()):
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for family, pts in points.items():
        if not pts:
            continue
        pts.sort()
        x, y, low, high = zip(*pts)
        marker, colour = MARKERS[family]
        ax.errorbar(x, y, yerr=[low, high], marker=marker, color=colour, capsize=2, lw=1, ms=7 if marker == "*" else 5,
                    label={"mar": "step reduction (MAR)", "gtr": "GtR"}.get(family, family.capitalize()
                                                                            if family != "disa" else "DiSA"))
    ax.set_xscale("log")
    ax.set_xlabel("GFLOPs per image (counted)")
    ax.set_ylabel("exact validity")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_title("mar_scenes: quality against compute (95 % Wilson intervals)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=140)
    plt.close(fig)
    return True


__all__ = ["cells", "paper_tables", "plot_frontier", "report"]
