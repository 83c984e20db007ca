"""Per-image FLOPs and Speed of the implemented MAR rows of the paper's Tables 1, 3 and 4, ours beside the paper's,
and of Table 2's LightGen rows (whose Speed the paper gives by latency only).

    python scripts/bench_flops.py

Counts each component on the real modules (meta device: no weights needed, seconds on a CPU) with
torch.utils.flop_counter under the MATH attention backend, composes them along each sampler's plan, and checks the
count against the analytic model. FLOPs = 2 x MAC, CFG included, VAE excluded; diffusion timesteps clipped at 950
(``diffusion.clip_timestep=950``), which the paper's baseline rows imply (100 steps run as 96 evaluations).
Writes results/flops.json (a list of rows) and results/flops.md; results/flops_lightgen.{json,md} for Table 2
(LightGen's own unclipped diffusion, 50 steps, constant CFG 4.0; the text aligner counted once per image).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gtr.errors import one_line_errors
from gtr.eval.flops import FlopsCounter, analytic_flops
from gtr.eval.paper import OURS, TABLE1, TABLE3, TABLE3_LABELS, TABLE4, note_of, paper_values
from gtr.models.registry import LIGHTGEN_PRESETS
from gtr.models.registry import PRESET_NAMES, PRESETS
from gtr.jobs.common import cache_from_config, sampler_from_config, sampling_options

REPO = Path(__file__).resolve().parent.parent
CLIP = 950
UNCLIPPED = {"lazymar", "lazymar_8"}  # LazyMAR's released code runs plain 100-step respacing (its rows fit only so);
# the compositions (gtr_16+lazymar, ...) keep their schedule's clipped diffusion, so they compare with its row
MODELS = ("mar_b", "mar_l", "mar_h")


def rows_to_count() -> list[tuple]:
    """(table, label, config, overrides, {model: (paper TFLOPs, paper Speed)} or None, note): every MAR row of the
    paper's Tables 1, 3 and 4 that a config reproduces, then ours."""
    values, rows = paper_values(), []
    in_table1 = {config for _, _, config, _ in TABLE1}
    for block, method, config, overrides in TABLE1:
        paper = {r["model"]: (r["tflops"], r["speed"]) for r in values["table1"]
                 if r["block"] == block and r["method"] == method and r["model"] in MODELS}
        label = method if block == "64" or "Step=" in method else f"{method}, \"Step={block}\" block"
        rows.append((1, label, config, overrides, paper, note_of(config, overrides)))
    for flags, config, overrides in TABLE3:
        r = next(r for r in values["table3"] if (r["gtr_star"], r["gtr_dagger"], r["fts"]) == flags)
        rows.append((3, TABLE3_LABELS[flags], config, overrides, {"mar_h": (r["tflops"], r["speed"])},
                     note_of(config, overrides) if overrides or config not in in_table1 else ""))  # once per config
    for method, (config, overrides) in TABLE4.items():
        if config == "mar":
            continue  # Table 4's "Origin" is Table 1's 64-step MAR-H row
        r = next(r for r in values["table4"] if r["method"] == method)
        rows.append((4, method, config, overrides, {"mar_h": (r["tflops"], r["speed"])},
                     note_of(config, overrides) if overrides or config not in in_table1 else ""))
    paper_of = {(r[0], r[2]): r[4] for r in reversed(rows)}  # (table, config) -> the first such row's values
    for table, label, config, overrides, compare_with, note in OURS:
        rows.append((table, label, config, overrides, None if compare_with is None else paper_of[table, compare_with],
                     note))
    return rows


# Table 2 (LightGen, 512 px): (block, method, sampler config, paper latency-Speed, note).
TABLE2 = [
    ("32", "LightGen, 32", "lightgen_32", 1.00, ""),
    ("16", "+Step=16", "lightgen_16", 1.37, ""),
    ("16", "+LazyMAR (our port)", "lazymar_lightgen_16", 2.00,
     "released defaults on 16 AR steps: no decoder pruning before AR step 20, so the encoder, condition and head "
     "caches act"),
    ("16", "+GtR (Ours)", "gtr_lightgen", 3.32, "K=4, (8, 3, 3, 2) = 16 AR steps, 50 -> 20 diffusion steps, FTS"),
    ("12", "+Step=12", "lightgen_12", 1.52, ""),
    ("12", "+LazyMAR (our port)", "lazymar_lightgen_12", 2.40, "as above, 12 AR steps"),
    ("12", "+GtR (Ours)", "gtr_lightgen_12", 3.82, "(4, 3, 3, 2): our choice, the paper gives no 12-step split"),
]


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def compose_lines(rows: list[dict], cache_gain: dict[str, float]) -> list[str]:
    """For each model and composed row: the schedule's speed alone, with LazyMAR, and the product of the schedule's
    speed and LazyMAR's own gain on MAR's schedule (``cache_gain``: MAR at 41 AR steps without / with the cache),
    which fully independent savings would reach."""
    speed = {(r["model"], r["config"]): r["speed"] for r in rows if not r["overrides"]}
    lines = ["| model | composition | schedule alone | with LazyMAR | LazyMAR's gain here | LazyMAR's gain on MAR (41 "
             "steps) | product if independent |", "|---|---|---|---|---|---|---|"]
    for model in MODELS:
        for composed in ("gtr_16+lazymar", "gtr_8+lazymar", "disa+lazymar"):
            alone, both = speed[model, composed.partition("+")[0]], speed[model, composed]
            lines.append(f"| {PRESET_NAMES[model]} | `{composed}` | {alone:.2f}x | {both:.2f}x | x{both / alone:.2f} | "
                         f"x{cache_gain[model]:.2f} | {alone * cache_gain[model]:.2f}x |")
    gains = [speed[m, c] / speed[m, c.partition("+")[0]] for m in MODELS for c in ("gtr_16+lazymar", "gtr_8+lazymar")]
    own = list(cache_gain.values())
    both = [speed[m, c] for m in MODELS for c in ("gtr_16+lazymar", "gtr_8+lazymar")]
    lines += ["", f"Verdict (FLOPs): the savings compose, in part. On GtR's schedules LazyMAR's caches multiply the "
              f"speed by x{min(gains):.2f}-{max(gains):.2f}, less than the x{min(own):.2f}-{max(own):.2f} they give on "
              f"MAR's own schedule: a short plan has fewer cached AR steps (the first 6 are full) and none late "
              f"enough to prune the decoder. GtR + LazyMAR reaches {min(both):.1f}-{max(both):.1f}x the 64-step "
              "baseline by FLOPs; whether quality holds there is a separate, measured question."]
    return lines


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    rows, cache_gain = [], {}
    for preset in MODELS:
        counter = FlopsCounter(PRESETS[preset])
        baseline = counter.sample(sampler_from_config(sampling_options(preset, "mar")[0]), CLIP).total
        lazy_options, lazy_cache = sampling_options(preset, "lazymar")
        lazy_schedule = sampler_from_config(lazy_options)
        cache_gain[preset] = (counter.sample(lazy_schedule).total
                              / counter.sample(lazy_schedule, cache=cache_from_config(lazy_cache)).total)
        for table, label, name, overrides, paper, note in rows_to_count():
            if paper is not None and preset not in paper:
                continue
            options, cache_options = sampling_options(preset, name, overrides)  # the model's cfg (!= 1: doubled)
            schedule, cache = sampler_from_config(options), cache_from_config(cache_options)
            clip = None if name in UNCLIPPED else CLIP
            counted = counter.sample(schedule, clip_timestep=clip, cache=cache)
            paper_tflops, paper_speed = (None, None) if paper is None else paper[preset]
            if cache.name != "none":
                check = "cached steps counted by running the model's own cached passes (no analytic model)"
            else:
                analytic = analytic_flops(PRESETS[preset], schedule, clip_timestep=clip)
                check = f"analytic model agrees to {abs(counted.total / analytic.total - 1):.2%}"
            rows.append({
                "table": table, "method": label, "model": preset, "config": name, "overrides": overrides,
                "sampler_config": options, **({"cache_config": cache_options} if cache.name != "none" else {}),
                "tflops": round(counted.tflops, 3), "paper_tflops": paper_tflops,
                "speed": round(baseline / counted.total, 2), "paper_speed": paper_speed,
                "ar_steps": len(schedule.plan(16, 16)),
                "counted_by": f"torch FlopCounterMode on the real modules (meta device, MATH attention), "
                              f"diffusion clip_timestep={clip}; {check}",
                "note": note,
            })
    rows.sort(key=lambda r: r["table"])  # stable: Table 1 by model, then Tables 3 and 4
    lines = [
        "# FLOPs and Speed, the MAR rows of Tables 1, 3 and 4 (counted here vs the paper)", "",
        f"Command: `python {Path(__file__).resolve().relative_to(REPO).as_posix()}` (CPU, no weights; counted, not "
        "timed). Ours: per-image TFLOPs counted on the real modules, 2 x MAC, CFG included, VAE excluded, "
        f"diffusion timesteps clipped at {CLIP} (the paper's baseline rows imply it; LazyMAR rows unclipped, as its "
        "code). Paper: Table 1, copied for "
        "comparison. Speed = the same model's 64-step FLOPs / the row's FLOPs.", "",
        "| table | model | method | AR steps | TFLOPs (ours) | TFLOPs (paper) | ours / paper | Speed (ours) | Speed (paper) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = None if r["paper_tflops"] is None else r["tflops"] / r["paper_tflops"]
        lines.append(f"| {r['table']} | {PRESET_NAMES[r['model']]} | {r['method']} | {r['ar_steps']} | {r['tflops']:.2f} | "
                     f"{fmt(r['paper_tflops'])} | {fmt(ratio, '.3f')} | {r['speed']:.2f} | {fmt(r['paper_speed'])} |")
    lines += ["", "Notes:"] + [f"- {label}: {note}" for _, label, _, _, _, note in rows_to_count() if note]
    lines += ["- Not here: Table 3's first row (neither GtR* nor GtR†, 45.13 T), whose schedule the paper does not "
              "give."]
    lines += ["", "Do the savings compose? FLOPs speed over the 64-step baseline. LazyMAR's gain = FLOPs of a "
              "schedule without / with the cache; \"product if independent\" = the schedule's speed x LazyMAR's gain "
              "on MAR's own 41-step schedule.", ""] + compose_lines(rows, cache_gain)
    lines += ["", "Quality of the compositions is measured where a model can be run: the Fashion-MNIST studies "
              "(`scripts/toy_study.py`)."]
    write("flops", rows, lines)
    lightgen()


def write(name: str, rows: list[dict], lines: list[str]) -> None:
    """results/<name>.json (the rows) and results/<name>.md (the report)."""
    out = REPO / "results" / name
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def lightgen() -> None:
    counter = FlopsCounter(LIGHTGEN_PRESETS["lightgen"])
    rows = []
    for block, label, name, paper_speed, note in TABLE2:
        options, cache_options = sampling_options("lightgen", name)
        schedule, cache = sampler_from_config(options), cache_from_config(cache_options)
        counted = counter.sample(schedule, cache=cache)
        rows.append({"block": block, "method": label, "model": "lightgen", "config": name, "overrides": {},
                     "sampler_config": options, **({"cache_config": cache_options} if cache.name != "none" else {}),
                     "ar_steps": len(schedule.plan(32, 32)),
                     "tflops": round(counted.tflops, 3), "transformer_tflops": round(
                         (counted.encoder + counted.decoder) / 1e12, 3),
                     "diffusion_tflops": round(counted.diffusion / 1e12, 3), "paper_latency_speed": paper_speed,
                     "counted_by": "torch FlopCounterMode on the real modules (meta device, MATH attention)",
                     "note": note})
    for row in rows:
        row["speed"] = round(rows[0]["tflops"] / row["tflops"], 2)
    lines = [
        "# FLOPs of Table 2's LightGen rows (counted here; the paper gives latency only)", "",
        f"Command: `python {Path(__file__).resolve().relative_to(REPO).as_posix()}` (CPU, no weights; counted, not "
        "timed). Per-image TFLOPs of fluid_large at 512 px (1,024 tokens) on the real modules, 2 x MAC, CFG "
        "included, T5 and VAE excluded; the text aligner once per image. FLOPs speed = the 32-step row's FLOPs / "
        "the row's. The paper's Speed column is a GPU latency ratio on an unstated GPU and batch, shown for "
        "comparison.", "",
        "| block | method | sampler | AR steps | TFLOPs | transformer | diffusion head | FLOPs speed (ours) | "
        "latency Speed (paper) |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['block']} | {r['method']} | `{r['config']}` | {r['ar_steps']} | {r['tflops']:.2f} | "
              f"{r['transformer_tflops']:.2f} | {r['diffusion_tflops']:.2f} | {r['speed']:.2f} | "
              f"{r['paper_latency_speed']:.2f} |" for r in rows]
    gtr16 = next(r for r in rows if r["config"] == "gtr_lightgen")
    step16 = next(r for r in rows if r["config"] == "lightgen_16")
    lines += ["", "Notes:"] + [f"- {r['method']} ({r['block']}): {r['note']}" for r in rows if r["note"]]
    lines += [f"- GtR's 16 AR steps equal Step=16's, so by FLOPs it saves over Step=16 only in the diffusion head "
              f"({step16['tflops']:.1f} -> {gtr16['tflops']:.1f} T, {step16['tflops'] / gtr16['tflops']:.2f}x). The "
              "paper's latencies put GtR 2.42x ahead of Step=16 (0.75 s -> 0.31 s): more than the head's whole "
              "share of the FLOPs can give, so its LightGen latency gain does not follow FLOPs (or its schedule "
              "differs from the stated rates). GPU latency of these rows: `scripts/bench_latency.py --models "
              "lightgen` (not measured yet)."]
    write("flops_lightgen", rows, lines)


if __name__ == "__main__":
    with one_line_errors():
        sys.exit(main())
