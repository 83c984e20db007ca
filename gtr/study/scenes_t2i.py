"""Table 2 tested: the paper's text-to-image claims on ``lightgen_scenes``, scored by GenEval's rules on exact
detections (:mod:`gtr.eval.geneval.scenes`).

Every row is a sampler config of ``configs/sampler`` with a few option overrides, run through the job users run,
``scripts/geneval.py`` (:func:`gtr.jobs.geneval.run_geneval`: the official folder layout, one render path, resumable
generation and scoring), on the testbed's 553 evaluation prompts x ``n_samples`` images per seed. A row's GenEval
overall is GenEval's: the unweighted mean of its six task accuracies; its standard error comes from the per-task
proportions over images (tasks are independent samples: SE^2 = sum_t p_t (1 - p_t) / n_t / 36). Claims are decided
by :mod:`gtr.study.statistics` (z-test of two independent estimates, non-inferiority with a margin of
:data:`MARGIN` for "keeps quality"), Holm-corrected within the table.

Tables: ``premise`` (the gate: 32, 16, 12 and 8 AR steps; 8 steps must cost at least 10 points of overall with the
95 % CI of the drop above 0), ``cfg`` (the guidance sweep that picks the model's CFG), ``table2`` (the paper's rows
at the 16- and 12-step budgets, plus Halton and DiSA there). Results are saved after every seed of every row, under
the hash of the model's weights (a retrained model starts a new attempt; earlier attempts' gates are kept).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from gtr.errors import GtRError
from gtr.eval.geneval.summary import TABLE2_COLUMNS
from gtr.study.statistics import Comparison, compare_estimates, decide

MODEL = "lightgen_scenes"
MARGIN = 0.05  # of GenEval overall: "keeps quality" fails when a is worse by more than 5 points
PREMISE_DROP = 0.10  # the gate: 8 AR steps at least 10 points of overall below 32


@dataclass(frozen=True)
class Row:
    key: str
    table: str
    family: str  # mar | halton | disa | lazymar | gtr
    label: str
    config: str
    overrides: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    table: str
    text: str
    a: str
    b: str
    kind: str  # better | noninferior


def _steps(n: int, table: str = "premise") -> Row:
    return Row(f"lightgen_{n}", table, "mar", f"LightGen, {n} AR steps" + (" (reference)" if n == 32 else ""),
               "lightgen_32", {"num_iter": n})


ROWS: tuple[Row, ...] = (
    _steps(32), _steps(16), _steps(12), _steps(8),
    *(Row(f"lightgen_cfg{c:g}", "cfg", "mar", f"LightGen, 32 AR steps, CFG {c:g}", "lightgen_32", {"cfg": c})
      for c in (1.0, 2.0, 3.0, 6.0)),
    Row("lazymar_16", "table2", "lazymar", "+LazyMAR (our port; 16-step block)", "lazymar_lightgen_16"),
    Row("gtr_16", "table2", "gtr", "+GtR (8, 3, 3, 2) = 16 AR steps (3.32x in the paper)", "gtr_lightgen"),
    Row("lazymar_12", "table2", "lazymar", "+LazyMAR (our port; 12-step block)", "lazymar_lightgen_12"),
    Row("gtr_12", "table2", "gtr", "+GtR (4, 3, 3, 2) = 12 AR steps (3.82x in the paper)", "gtr_lightgen_12"),
    Row("halton_16", "table2", "halton", "Halton, 16 AR steps", "halton", {"num_iter": 16}),
    Row("halton_12", "table2", "halton", "Halton, 12 AR steps", "halton", {"num_iter": 12}),
    Row("disa_16", "table2", "disa", "DiSA 50->5, 16 AR steps", "disa", {"num_iter": 16}),
    Row("disa_12", "table2", "disa", "DiSA 50->5, 12 AR steps", "disa", {"num_iter": 12}),
)
ROW = {r.key: r for r in ROWS}
TABLES = ("premise", "cfg", "table2")
CLAIMS: tuple[Claim, ...] = (
    Claim("table2", "GtR-16 keeps the 32-step quality", "gtr_16", "lightgen_32", "noninferior"),
    Claim("table2", "GtR-12 keeps the 32-step quality", "gtr_12", "lightgen_32", "noninferior"),
    Claim("table2", "GtR-16 beats Step=16", "gtr_16", "lightgen_16", "better"),
    Claim("table2", "GtR-12 beats Step=12", "gtr_12", "lightgen_12", "better"),
    *(Claim("table2", f"GtR-{n} beats {family} ({n}-step block)", f"gtr_{n}", f"{key}_{n}", "better")
      for n in (16, 12) for key, family in (("lazymar", "LazyMAR"), ("halton", "Halton"), ("disa", "DiSA"))),
)


def rows_of(tables: Sequence[str]) -> list[str]:
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise GtRError(f"unknown table(s) {', '.join(unknown)}: choose from {', '.join(TABLES)}")
    return [r.key for r in ROWS if r.table in tables]


# ----------------------------------------------------------------------------------------------------------------
# Measuring


def row_overrides(row: Row, cfg_scale: float | None) -> list[str]:
    """Hydra overrides of a row: its sampler config and options; ``cfg_scale`` (the model's chosen CFG) replaces
    the config's guidance unless the row sets its own."""
    options = dict(row.overrides)
    if cfg_scale is not None and "cfg" not in options:
        options["cfg"] = cfg_scale
    return [f"sampler={row.config}", *(f"sampler.{k}={json.dumps(v)}" for k, v in options.items())]


def measure(keys: Sequence[str], *, study: dict, path: Path, images_root: Path, n_samples: int,
            seeds: Sequence[int], batch_size: int, cfg_scale: float | None = None, device: str = "cpu",
            mode: str = "eager", model_overrides: Sequence[str] = (), num_prompts: int | None = None,
            command: str = "") -> None:
    """Measure the missing seeds of the rows ``keys`` into ``study["current"]`` through scripts/geneval.py's job
    (images under ``images_root/<row>/seed<k>``, resumable), saving ``study`` to ``path`` after every seed."""
    if not keys:
        return
    import torch
    from omegaconf import OmegaConf

    from gtr.config import compose_config
    from gtr.eval.flops import FlopsCounter
    from gtr.eval.latency import device_name
    from gtr.files import write_json
    from gtr.jobs.geneval import run_geneval
    from gtr.models.registry import lightgen_config
    from gtr.jobs.common import cache_from_config, sampler_from_config
    state = study["current"]
    state.setdefault("runs", []).append({"device": device_name(torch.device(device)), "mode": mode,
                                         "command": command, "rows": list(keys)})
    base = [f"model={MODEL}", *model_overrides, f"n_samples={n_samples}", f"batch_size={batch_size}",
            f"device={device}", f"mode={mode}", "progress=false", f"num_prompts={json.dumps(num_prompts)}",
            f"text_cache={images_root / 'text_cache'}"]
    for key in keys:
        row = ROW[key]
        overrides = row_overrides(row, cfg_scale)
        record = state["rows"].get(key)
        if record is None or record["overrides"] != overrides:
            record = state["rows"][key] = {"overrides": overrides, "per_seed": []}
        cfg = compose_config(*base, *overrides, name="geneval")
        for seed in seeds:
            if any(r["seed"] == seed for r in record["per_seed"]):
                continue
            result = run_geneval(compose_config(*base, *overrides, f"seed={seed}",
                                                f"output_dir={images_root / key / f'seed{seed}'}", name="geneval"),
                                 sampler_config=row.config)
            tasks = result["geneval_summary"]["tasks"]
            record["per_seed"].append({
                "seed": seed, "images": result["num_images"], "s_per_image": result["seconds_rank0"] /
                max(1, result["generated_by_rank0"]) if result["generated_by_rank0"] else None,
                "tasks": {t: [tasks[t]["correct"], tasks[t]["images"]] for t in tasks},
                "overall": result["geneval"]["overall"]})
            print(f"{key} seed {seed}: GenEval overall {result['geneval']['overall']:.3f}", flush=True)
            write_json(path, study)
        record["per_seed"].sort(key=lambda r: r["seed"])
        record["sampler"] = OmegaConf.to_container(cfg.sampler, resolve=True)
        sampler = sampler_from_config(cfg.sampler, {"clip_timestep": cfg.diffusion.clip_timestep})
        arch = lightgen_config(MODEL, **dict(cfg.model.hparams or {}))
        record["gflops"] = FlopsCounter(arch).sample(sampler, cfg.diffusion.clip_timestep,
                                                     cache_from_config(cfg.get("cache"))).total / 1e9
        record["ar_steps"] = len(sampler.plan(arch.seq_h, arch.seq_h))
        write_json(path, study)


# ----------------------------------------------------------------------------------------------------------------
# Deciding


def task_counts(record: Mapping) -> dict[str, tuple[int, int]]:
    """(correct, images) per task over a row's seeds."""
    out: dict[str, list[int]] = {}
    for s in record["per_seed"]:
        for task, (k, n) in s["tasks"].items():
            total = out.setdefault(task, [0, 0])
            total[0] += k
            total[1] += n
    return {t: (k, n) for t, (k, n) in out.items()}


def overall(record: Mapping) -> tuple[float, float]:
    """GenEval overall (the unweighted mean of the task accuracies) and its standard error over images."""
    counts = task_counts(record)
    if not counts:
        raise GtRError("a row without scored images has no GenEval overall")
    p = {t: k / n for t, (k, n) in counts.items()}
    variance = sum(p[t] * (1 - p[t]) / counts[t][1] for t in counts) / len(counts) ** 2
    # a task at 0 or 1 has no sampling variance by this formula; add the Agresti-Caffo half-count so it is not certain
    variance += sum(1 / (4 * (counts[t][1] + 2) ** 2) for t in counts if p[t] in (0.0, 1.0)) / len(counts) ** 2
    return sum(p.values()) / len(p), math.sqrt(variance)


def compare(claim: Claim, rows: Mapping) -> Comparison | None:
    a, b = rows.get(claim.a), rows.get(claim.b)
    if not a or not b or not a["per_seed"] or not b["per_seed"]:
        return None
    return compare_estimates(claim.text, claim.a, claim.b, "GenEval overall", overall(a), overall(b), claim.kind,
                             MARGIN, higher_is_better=True)


def verdicts(state: Mapping) -> list[dict]:
    rows = state.get("rows", {})
    measured = [c for c in (compare(claim, rows) for claim in CLAIMS) if c is not None]
    return [c.as_dict() for c in decide(measured)]


def premise(state: Mapping) -> dict:
    """The gate: GenEval overall at 32 vs 8 AR steps (and where 12 steps sit, against the paper's 0.02)."""
    rows = state.get("rows", {})
    if not all(rows.get(k, {}).get("per_seed") for k in ("lightgen_32", "lightgen_8")):
        return {"passed": False, "measured": False}
    (m32, s32), (m8, s8) = overall(rows["lightgen_32"]), overall(rows["lightgen_8"])
    drop = m32 - m8
    half = 1.959964 * math.hypot(s32, s8)
    gate = {"measured": True, "overall_32": m32, "overall_8": m8, "drop": drop, "ci": (drop - half, drop + half),
            "passed": bool(drop >= PREMISE_DROP and drop - half > 0),
            "rule": f"overall at 8 AR steps at least {PREMISE_DROP * 100:.0f} points below 32 steps, 95 % CI of the drop "
                    "above 0"}
    if rows.get("lightgen_12", {}).get("per_seed"):
        gate["drop_12"] = m32 - overall(rows["lightgen_12"])[0]
    return gate


def load_state(path: Path, model: str, settings: Mapping) -> dict:
    """The study's results for this model (the weights' hash) and settings; other attempts are kept under
    ``attempts`` with their premise gate and each row's overall."""
    stored = json.loads(path.read_text()) if path.is_file() else {}
    current = stored.get("current")
    if current and (current.get("model") != model or current.get("settings") != dict(settings)):
        stored.setdefault("attempts", []).append({
            "model": current.get("model"), "settings": current.get("settings"), "premise": premise(current),
            "rows": {k: {"overall": overall(v)[0], "gflops": v.get("gflops")}
                     for k, v in current.get("rows", {}).items() if v["per_seed"]}})
        current = None
    stored["current"] = current or {"model": model, "settings": dict(settings), "rows": {}}
    return stored


# ----------------------------------------------------------------------------------------------------------------
# Reporting


def _cell(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def report(study: Mapping, path: Path, command: str) -> str:
    """``results/scenes_t2i_study.md``: the gate, Table 2 in the paper's layout with the paper's LightGen values
    beside ours, the verdicts."""
    from gtr.eval.paper import paper_values
    from gtr.files import write_text
    state = study["current"]
    rows = state.get("rows", {})
    gate = premise(state)
    lines = ["# Table 2 on the text-to-image scenes (lightgen_scenes, GenEval rules on exact detections)", "",
             f"Measured here on CPU by `{command}` (model weights sha256 {state['model']}…). GenEval overall = the "
             "unweighted mean of the six task accuracies, ± its 95 % CI over images. Paper values (LightGen 3.4B, "
             "GenEval, A100) are shown for comparison, not measured here.", "", "## Premise gate", ""]
    if gate.get("measured"):
        lines.append(f"32 AR steps: {gate['overall_32']:.3f}; 8 AR steps: {gate['overall_8']:.3f}; drop "
                     f"{gate['drop']:+.3f} (95 % CI {gate['ci'][0]:+.3f} … {gate['ci'][1]:+.3f}). Rule: {gate['rule']}. "
                     f"**{'passed' if gate['passed'] else 'failed'}**." + (
                         f" 12 AR steps cost {gate['drop_12']:+.3f} here, against 0.02 in the paper's Table 2."
                         if "drop_12" in gate else ""))
    else:
        lines.append("Not measured yet.")
    for attempt in study.get("attempts", []):
        p = attempt["premise"]
        lines.append(f"- earlier attempt (weights {attempt['model']}): " + (
            f"drop {p['drop']:+.3f}, {'passed' if p['passed'] else 'failed'}" if p.get("measured") else "not measured"))
    paper = {r["method"]: r for r in paper_values()["table2"]}
    head = "| row | AR steps | GFLOPs | speed (FLOPs) | CPU s/img | " + " | ".join(TABLE2_COLUMNS) + \
        " | overall ± 95 % CI | paper overall |"
    lines += ["", "## Rows", "", head, "|---" * (head.count("|") - 1) + "|"]
    ref = rows.get("lightgen_32")
    for row in ROWS:
        r = rows.get(row.key)
        if not r or not r["per_seed"]:
            continue
        counts = task_counts(r)
        mean, se = overall(r)
        times = [s["s_per_image"] for s in r["per_seed"] if s.get("s_per_image")]
        speed = f"{ref['gflops'] / r['gflops']:.2f}x" if ref and r.get("gflops") and ref.get("gflops") else "—"
        label = {"lightgen_32": "LightGen, 32", "lightgen_16": "+Step=16", "lightgen_12": "+Step=12"}.get(row.key)
        paper_row = paper.get(label) if label else None
        lines.append(f"| {row.label} | {r.get('ar_steps', '—')} | {_cell(r.get('gflops'), 3)} | {speed} | "
                     f"{_cell(sum(times) / len(times) if times else None)} | "
                     + " | ".join(f"{counts[t][0] / counts[t][1]:.3f}" if t in counts else "—" for t in TABLE2_COLUMNS)
                     + f" | {mean:.3f} ± {1.96 * se:.3f} | {_cell(paper_row['overall']) if paper_row else '—'} |")
    decided = verdicts(state)
    lines += ["", "## Claims (Holm within the table)", "",
              "| claim | a − b (overall) | 95 % CI | test | p (Holm) | verdict |", "|---|---|---|---|---|---|"]
    for c in decided:
        p = c["p_holds_holm"] if c["verdict"] != "does not hold" else c["p_fails_holm"]
        lines.append(f"| {c['claim']} | {c['difference']:+.3f} | {c['ci'][0]:+.3f} … {c['ci'][1]:+.3f} | {c['test']} "
                     f"| {p:.3g} | **{c['verdict']}** |")
    if not decided:
        lines.append("| (no claim measured yet) | | | | | |")
    text = "\n".join(lines) + "\n"
    write_text(path, text)
    return text


__all__ = ["CLAIMS", "MARGIN", "MODEL", "ROW", "ROWS", "Row", "TABLES", "compare", "load_state", "measure",
           "overall", "premise", "report", "row_overrides", "rows_of", "task_counts", "verdicts"]
