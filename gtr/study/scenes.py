"""Does GtR hold? The paper's claims on ``mar_scenes``, where a rule says whether each sample is right.

Every row is a sampler config of ``configs/sampler`` (optionally ``+<cache>``) with a few option overrides, run on
``model=mar_scenes`` (16x16 tokens, as ImageNet MAR: the paper's configs run unchanged). A row draws
``samples`` class-balanced images for each seed through the jobs' one render path (:func:`gtr.jobs.common.render`)
and scores them with :func:`gtr.eval.metrics.score` (with the exact scorer): per image, valid or not (and why), per seed, the FID/KID
analogues of the scenes classifier. Claims are decided by :mod:`gtr.study.statistics` (validity: two-proportion
z-test over images; FID analogue: Welch over seeds), Holm-corrected within each table.

Tables: ``premise`` (the gate: 64 vs 8 AR steps, guided and unguided), ``cfg`` (the guidance sweep that picks the
model's CFG), ``table1``, ``table3``, ``table4``, ``table5`` (the paper's rows), ``frontier`` (>= 4 operating points
per method family, iso-FLOPs comparisons), ``sweeps`` (GtR's K, T_rec, beta, T_detail), ``cached`` (LazyMAR's caches
on other schedules; not in the paper). Results are saved after every seed of every row (a stopped study resumes
there), under the hash of the model's weights: a retrained model starts a new *attempt*, and every attempt's premise
gate is kept in the report.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from gtr.errors import GtRError
from gtr.study.statistics import (RELATIVE_FID_MARGIN, Comparison, compare_means, compare_proportions, decide,
                                  premise_gate)

MODEL = "mar_scenes"
# The margin of exact validity: a "keeps quality" claim (non-inferiority) does not hold when a is worse by more than
# 5 points; a "beats" claim holds when a is better at all, and does not hold when a's advantage is below 5 points.
MARGIN = 0.05
UNGUIDED = {"cfg": 1.0}


@dataclass(frozen=True)
class Row:
    key: str
    table: str   # the table it first appears in (a row may serve claims of several)
    family: str  # mar | halton | disa | lazymar | gtr | ablation | order | cached (frontier and plot markers)
    label: str
    config: str  # sampler config ("+<cache>": with that cache)
    overrides: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """``a`` is ``kind`` (better | noninferior) than ``b`` on exact validity (and, reported beside it, on the FID
    analogue over seeds)."""
    table: str
    text: str
    a: str
    b: str
    kind: str


def _mar(steps: int, table: str = "frontier", **extra) -> Row:
    guided = "" if not extra else ", unguided" if extra == UNGUIDED else f", {extra}"
    return Row(f"mar_{steps}{'_unguided' if extra == UNGUIDED else ''}", table, "mar",
               f"MAR, {steps} AR steps{guided}", "mar", {"num_iter": steps, **extra})


ROWS: tuple[Row, ...] = (
    # The premise gate (before any other row): the baseline at 64, 32, 16 and 8 AR steps, guided and unguided.
    Row("mar", "premise", "mar", "MAR, 64 AR steps (reference)", "mar"),
    Row("mar_8", "premise", "mar", "MAR, 8 AR steps (Step=8)", "mar_8"),
    Row("mar_16", "premise", "mar", "MAR, 16 AR steps (Step=16)", "mar_16"),
    _mar(32, "premise"),
    _mar(64, "premise", **UNGUIDED), _mar(32, "premise", **UNGUIDED), _mar(16, "premise", **UNGUIDED),
    _mar(8, "premise", **UNGUIDED),
    # The guidance sweep at 64 steps (picks the model's default_cfg, the paper's guided regime).
    *(Row(f"mar_cfg{c:g}", "cfg", "mar", f"MAR, 64 AR steps, CFG {c:g}", "mar", {"cfg": c})
      for c in (1.5, 2.0, 3.0, 4.0, 6.0)),
    # Table 1.
    Row("halton", "table1", "halton", "Halton, 16 AR steps", "halton"),
    Row("disa", "table1", "disa", "DiSA 50->5, 24 AR steps (\"Step=16\" block)", "disa"),
    Row("lazymar", "table1", "lazymar", "LazyMAR, 41 AR steps (\"Step=16\" block)", "lazymar"),
    Row("gtr_16", "table1", "gtr", "GtR (15, 2, 2) = 19 AR steps (16-step block)", "gtr_16"),
    Row("halton_8", "table1", "halton", "Halton, 8 AR steps", "halton_8"),
    Row("disa_16", "table1", "disa", "DiSA 50->5, 16 AR steps (\"Step=8\" block)", "disa_16"),
    Row("lazymar_8", "table1", "lazymar", "LazyMAR, 15 AR steps (\"Step=8\" block)", "lazymar_8"),
    Row("gtr_8", "table1", "gtr", "GtR (7, 1, 1) = 9 AR steps (8-step block)", "gtr_8"),
    Row("gtr", "table1", "gtr", "GtR as literally stated (rates 2.67/10.67/64: 32 AR steps)", "gtr"),
    # Table 3: GtR's components.
    Row("gtr_star", "table3", "ablation", "GtR* only (GtR order and stages, constant 50 diffusion steps)",
        "gtr_star", {"constant_steps": 50}),
    Row("gtr_dagger", "table3", "ablation", "GtR† only (stage-aware diffusion steps, random order)", "gtr_dagger"),
    Row("gtr_16_no_fts", "table3", "ablation", "GtR* + GtR†, no FTS", "gtr_16", {"fts": False}),
    # Table 4: which tokens FTS enhances.
    Row("gtr_fts_random", "table4", "ablation", "FTS: random tokens", "gtr_fts_random"),
    Row("gtr_fts_low", "table4", "ablation", "FTS: low-frequency tokens", "gtr_fts_low"),
    Row("gtr_fts_all", "table4", "ablation", "FTS: every token (Full-Enhanced)", "gtr_fts_all"),
    # Table 5: token orders.
    Row("gtr_order_raster", "table5", "order", "raster order", "gtr_order_raster"),
    Row("gtr_order_subsample", "table5", "order", "subsample order", "gtr_order_subsample"),
    Row("gtr_order_random", "table5", "order", "random order", "gtr_order_random"),
    # The frontier: >= 4 operating points per family (with the rows above).
    _mar(24), _mar(12),
    Row("halton_12", "frontier", "halton", "Halton, 12 AR steps", "halton", {"num_iter": 12}),
    Row("halton_24", "frontier", "halton", "Halton, 24 AR steps", "halton", {"num_iter": 24}),
    Row("halton_32", "frontier", "halton", "Halton, 32 AR steps", "halton", {"num_iter": 32}),
    Row("disa_8", "frontier", "disa", "DiSA 50->5, 8 AR steps", "disa_8"),
    Row("disa_32", "frontier", "disa", "DiSA 50->5, 32 AR steps", "disa", {"num_iter": 32}),
    Row("lazymar_32", "frontier", "lazymar", "LazyMAR on a 32-step plan", "lazymar", {"num_iter": 32}),
    Row("lazymar_24", "frontier", "lazymar", "LazyMAR on a 24-step plan", "lazymar", {"num_iter": 24}),
    Row("gtr_12", "frontier", "gtr", "GtR (10, 1, 1) = 12 AR steps", "gtr", {"steps": [10, 1, 1]}),
    Row("gtr_27", "frontier", "gtr", "GtR (23, 2, 2) = 27 AR steps", "gtr", {"steps": [23, 2, 2]}),
    # GtR's hyperparameters around gtr_16: K, T_rec, beta, T_detail.
    Row("gtr_k2", "sweeps", "gtr", "GtR K=2: (17, 2) = 19 AR steps", "gtr_16",
        {"num_stages": 2, "steps": [17, 2]}),
    Row("gtr_k4", "sweeps", "gtr", "GtR K=4: (13, 2, 2, 2) = 19 AR steps", "gtr_16",
        {"num_stages": 4, "steps": [13, 2, 2, 2]}),
    Row("gtr_trec10", "sweeps", "gtr", "GtR-16, T_rec 10", "gtr_16", {"t_rec": 10}),
    Row("gtr_trec50", "sweeps", "gtr", "GtR-16, T_rec 50", "gtr_16", {"t_rec": 50}),
    Row("gtr_beta05", "sweeps", "gtr", "GtR-16, beta 0.05", "gtr_16", {"beta": 0.05}),
    Row("gtr_beta25", "sweeps", "gtr", "GtR-16, beta 0.25", "gtr_16", {"beta": 0.25}),
    Row("gtr_tdetail25", "sweeps", "gtr", "GtR-16, T_detail 25", "gtr_16", {"t_detail": 25}),
    Row("gtr_tdetail100", "sweeps", "gtr", "GtR-16, T_detail 100", "gtr_16", {"t_detail": 100}),
    # Not in the paper: LazyMAR's caches on other schedules.
    Row("gtr_16_lazymar", "cached", "cached", "GtR-16 + LazyMAR's caches", "gtr_16+lazymar"),
    Row("disa_lazymar", "cached", "cached", "DiSA 24 AR steps + LazyMAR's caches", "disa+lazymar"),
)
ROW = {r.key: r for r in ROWS}
PREMISE = tuple(r.key for r in ROWS if r.table == "premise")
FAMILIES = ("mar", "halton", "disa", "lazymar", "gtr")

CLAIMS: tuple[Claim, ...] = (
    Claim("table1", "GtR-16 keeps the 64-step quality", "gtr_16", "mar", "noninferior"),
    Claim("table1", "GtR-8 keeps the 64-step quality", "gtr_8", "mar", "noninferior"),
    Claim("table1", "GtR-16 beats Step=16", "gtr_16", "mar_16", "better"),
    Claim("table1", "GtR-8 beats Step=8", "gtr_8", "mar_8", "better"),
    *(Claim("table1", f"GtR-16 beats {ROW[b].label.split(',')[0]} (16-step block)", "gtr_16", b, "better")
      for b in ("halton", "disa", "lazymar")),
    *(Claim("table1", f"GtR-8 beats {ROW[b].label.split(',')[0]} (8-step block)", "gtr_8", b, "better")
      for b in ("halton_8", "disa_16", "lazymar_8")),
    Claim("table3", "GtR* alone keeps the 64-step quality", "gtr_star", "mar", "noninferior"),
    Claim("table3", "GtR† alone keeps the 64-step quality", "gtr_dagger", "mar", "noninferior"),
    Claim("table3", "GtR* + GtR† (no FTS) keeps the 64-step quality", "gtr_16_no_fts", "mar", "noninferior"),
    Claim("table3", "FTS adds to GtR* + GtR†", "gtr_16", "gtr_16_no_fts", "better"),
    Claim("table4", "high-frequency FTS beats random tokens", "gtr_16", "gtr_fts_random", "better"),
    Claim("table4", "high-frequency FTS beats low-frequency tokens", "gtr_16", "gtr_fts_low", "better"),
    Claim("table4", "high-frequency FTS keeps the quality of enhancing every token", "gtr_16", "gtr_fts_all",
          "noninferior"),
    Claim("table5", "the GtR order beats raster", "gtr_16", "gtr_order_raster", "better"),
    Claim("table5", "the GtR order beats subsample", "gtr_16", "gtr_order_subsample", "better"),
    Claim("table5", "the GtR order beats random", "gtr_16", "gtr_order_random", "better"),
    Claim("cached", "LazyMAR's caches keep GtR-16's quality", "gtr_16_lazymar", "gtr_16", "noninferior"),
    Claim("cached", "LazyMAR's caches keep DiSA's quality", "disa_lazymar", "disa", "noninferior"),
)
TABLES = ("premise", "cfg", "table1", "table3", "table4", "table5", "frontier", "sweeps", "cached")


def rows_of(tables: Sequence[str]) -> list[str]:
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise GtRError(f"unknown table(s) {', '.join(unknown)}: choose from {', '.join(TABLES)}")
    return [r.key for r in ROWS if r.table in tables]


# ----------------------------------------------------------------------------------------------------------------
# Measuring


def weights_file(model: str, checkpoint: str | None) -> Path:
    """The weights file a study of ``model`` samples from (its hash names the attempt): ``checkpoint``, else the
    shipped one."""
    if checkpoint:
        path = Path(checkpoint)
        if not path.is_file():
            raise GtRError(f"--checkpoint {checkpoint} is not a file: give a {model} .safetensors")
        return path
    from gtr.models.registry import preset
    from gtr.weights import resolve
    return resolve(preset(model).weights)


def model_id(path: Path) -> str:
    """The first 12 hex digits of the sha256 of the model's weights file: the study's *attempt*."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def balanced_labels(ids: Sequence[int], num_classes: int):
    import torch
    return torch.as_tensor([i % num_classes for i in ids])


def measure(keys: Sequence[str], *, study: dict, path: Path, samples: int, seeds: Sequence[int], batch_size: int,
            device: str = "cpu", mode: str = "eager", checkpoint: str | None = None, command: str = "") -> None:
    """Measure the missing seeds of the rows ``keys`` into ``study["current"]``, saving ``study`` to ``path`` after
    every seed."""
    if not keys:
        return
    import torch

    from gtr.data.scenes import NUM_CLASSES
    from gtr.eval.flops import FlopsCounter
    from gtr.eval.latency import device_name
    from gtr.eval.metrics import Reference, score
    from gtr.eval.scenes import SceneExtractor, load_classifier, reference_features
    from gtr.eval.scenes import score as exact
    from gtr.files import write_json
    from gtr.jobs.common import (cache_from_config, cache_record, load_configured_model, load_image_tokenizer,
                                 render, sampler_from_config, sampling_options)
    from gtr.config import compose_config
    torch.set_grad_enabled(False)
    dev = torch.device(device)
    overrides = [f"model={MODEL}"] + ([f"model.checkpoint={checkpoint}"] if checkpoint else [])
    cfg = compose_config(*overrides)
    model = load_configured_model(cfg, dev)
    tokenizer = load_image_tokenizer(cfg.model.tokenizer, cfg.weights, dev)
    extractor = SceneExtractor(load_classifier(device=dev))
    reference = Reference.of_features(reference_features(extractor, "test"))
    counter = FlopsCounter(model.config)
    clip = cfg.diffusion.clip_timestep
    state = study["current"]
    state.setdefault("runs", []).append({"device": device_name(dev), "mode": mode, "command": command,
                                         "rows": list(keys)})
    for key in keys:
        row = ROW[key]
        options, cache_options = sampling_options(MODEL, row.config, row.overrides)
        cached = cache_record(cache_options)
        record = state["rows"].get(key)
        if record is None or (record["sampler"], record.get("cache")) != (options, cached.get("cache")):
            record = state["rows"][key] = {"sampler": options, **cached, "per_seed": []}
        sampler = sampler_from_config(options, {"clip_timestep": clip})
        cache = cache_from_config(cache_options)
        for seed in seeds:
            if any(r["seed"] == seed for r in record["per_seed"]):
                continue
            ids = list(range(samples))
            batches = [ids[i:i + batch_size] for i in range(0, samples, batch_size)]
            timings = []  # sampling seconds per batch, the decoder not counted (as the 16x16 study)
            images = torch.cat([im.cpu() for _, im in render(
                model, sampler, tokenizer, batches, lambda b: balanced_labels(b, NUM_CLASSES), seed=seed,
                precision="fp32", cache=cache, mode=mode, timings=timings)])
            seconds = sum(timings)
            labels = balanced_labels(ids, NUM_CLASSES).numpy()
            scores = score(images.split(1000), extractor, reference, labels=labels, exact=exact, kid=True,
                           per_image=True)
            del scores["extractor"]
            record["per_seed"].append({"seed": seed, "s_per_image": seconds / samples, **scores})
            print(f"{key} seed {seed}: valid {scores['valid']}/{scores['count']}, FID (scenes) "
                  f"{scores['fid_scenes']:.2f}, {seconds / samples * 1e3:.0f} ms per image", flush=True)
            write_json(path, study)
        record["per_seed"].sort(key=lambda r: r["seed"])
        record["gflops"] = counter.sample(sampler, clip, cache).total / 1e9
        record["ar_steps"] = len(sampler.plan(model.seq_h, model.seq_w))
        write_json(path, study)


GRID_ROWS = ("mar", "mar_8", "gtr_16", "gtr_order_raster")  # the sample grid: 8 vs 64 steps, GtR vs raster order


def sample_grid(keys: Sequence[str], *, state: Mapping, path: Path, device: str = "cpu",
                checkpoint: str | None = None, per_row: int = 12) -> bool:
    """One labelled row of ``per_row`` samples (seed 0, one per class) per measured row of ``keys``, each captioned
    with its exact verdict ("valid", or its first failure and how many more): the failures the tables count, seen.
    False when none of ``keys`` is measured."""
    import torch

    from gtr.data.scenes import NUM_CLASSES
    from gtr.eval.scenes import check
    from gtr.jobs.common import (cache_from_config, load_configured_model, load_image_tokenizer, render,
                                 sampler_from_config)
    from gtr.config import compose_config
    from gtr.images import sample_sheet
    keys = [k for k in keys if state["rows"].get(k, {}).get("per_seed")]
    if not keys:
        return False
    torch.set_grad_enabled(False)
    cfg = compose_config(f"model={MODEL}", *([f"model.checkpoint={checkpoint}"] if checkpoint else []))
    dev = torch.device(device)
    model = load_configured_model(cfg, dev)
    tokenizer = load_image_tokenizer(cfg.model.tokenizer, cfg.weights, dev)
    sheet = []
    for key in keys:
        record = state["rows"][key]
        sampler = sampler_from_config(record["sampler"], {"clip_timestep": cfg.diffusion.clip_timestep})
        ids = list(range(per_row))
        _, images = next(render(model, sampler, tokenizer, [ids], lambda b: balanced_labels(b, NUM_CLASSES),
                                        seed=0, precision="fp32", cache=cache_from_config(record.get("cache"))))
        images = images.cpu().numpy()
        captions = []
        for i, image in zip(ids, images):
            outcome = check(image, i % NUM_CLASSES)
            more = f" +{len(outcome.failures) - 1}" if len(outcome.failures) > 1 else ""
            captions.append("valid" if outcome.valid else f"{outcome.failures[0]}{more}")
        sheet.append((ROW[key].label, list(zip(images, captions))))
    sample_sheet(sheet, path)
    return True


def figure3(*, state: dict, path: Path, count: int, seeds: int, completion_steps: int = 32, device: str = "cpu",
            checkpoint: str | None = None, base_overrides: Mapping | None = None) -> dict:
    """Figure 3 on the scenes: ``count`` class-balanced samples of the 64-step baseline, half of each one's tokens
    given as a checkerboard or as a block (the top rows), the other half completed with ``seeds`` seeds. Per image,
    the spread = the std across seeds of its pixels (RGB in [0, 1]), averaged over pixels; and each completion's
    exact validity. Stored in ``state["figure3"]``; the sheet of the first images goes to ``path``.
    ``base_overrides``: options of the baseline's sampler (tests: fewer steps)."""
    import torch

    from gtr.sampling import sample
    from gtr.data.scenes import NUM_CLASSES
    from gtr.eval.scenes import check
    from gtr.config import compose_config
    from gtr.jobs.common import load_configured_model, load_image_tokenizer, sampler_from_config, sampling_options
    from gtr.sampling.completion import CompletionSampler, block_mask, checkerboard_mask
    from gtr.images import sample_sheet
    from gtr.tokenizers import to_uint8
    torch.set_grad_enabled(False)
    cfg = compose_config(f"model={MODEL}", *([f"model.checkpoint={checkpoint}"] if checkpoint else []))
    dev = torch.device(device)
    model = load_configured_model(cfg, dev)
    tokenizer = load_image_tokenizer(cfg.model.tokenizer, cfg.weights, dev)
    base = sampler_from_config(sampling_options(MODEL, "mar", base_overrides)[0],
                               {"clip_timestep": cfg.diffusion.clip_timestep})
    labels = balanced_labels(range(count), NUM_CLASSES)
    reference = model.patchify(sample(model, base, labels, seed=10_000))
    reference_images = to_uint8(tokenizer.decode(model.unpatchify(reference))).cpu().numpy()
    side, result, sheet = model.seq_h, {"images": count, "seeds": seeds, "completion_steps": completion_steps}, []
    for pattern, mask in (("checkerboard", checkerboard_mask(side, side)), ("block", block_mask(side, side))):
        completion = CompletionSampler(num_iter=completion_steps, diffusion_steps=base.diffusion_steps, cfg=base.cfg,
                                       given_tokens=reference, given=mask)
        completion.clip_timestep = base.clip_timestep
        stack = np.stack([to_uint8(tokenizer.decode(sample(model, completion, labels, seed=s))).cpu().numpy()
                          for s in range(seeds)])  # [S, N, H, W, 3]
        spread = (stack.astype(np.float64) / 255).std(axis=0).mean(axis=(1, 2, 3))  # [N]
        valid = np.array([[check(stack[s, i], int(labels[i])).valid for i in range(count)] for s in range(seeds)])
        result[pattern] = {"pixel_std_mean": float(spread.mean()), "pixel_std_sem": float(spread.std(ddof=1) /
                                                                                          np.sqrt(count)),
                           "valid": int(valid.sum()), "completions": int(valid.size)}
        cell = np.asarray(mask, dtype=np.float32).reshape(side, side)
        scale = reference_images.shape[1] // side
        cell = np.kron(cell, np.ones((scale, scale), np.float32))[..., None]
        for i in range(min(3, count)):
            given = (reference_images[i] * (0.25 + 0.75 * cell)).astype(np.uint8)
            sheet.append((f"{pattern} half given, image {i} (class {int(labels[i])})",
                          [(reference_images[i], "reference"), (given, "given")] +
                          [(stack[s, i], "valid" if valid[s, i] else "invalid") for s in range(seeds)]))
    sample_sheet(sheet, path)
    state["figure3"] = result
    return result


def figure3_comparison(f3: Mapping) -> Comparison:
    """The paper's Figure 3 claim: a spread-out half pins the image down more than a contiguous one (less pixel
    spread across seeds), a z-test of the two mean spreads over images."""
    from gtr.study.statistics import compare_estimates
    c, b = f3["checkerboard"], f3["block"]
    return compare_estimates("a spread-out (checkerboard) half pins the image down more than a contiguous half "
                             "(less pixel spread across seeds)", "checkerboard", "block", "pixel std across seeds",
                             (c["pixel_std_mean"], c["pixel_std_sem"]), (b["pixel_std_mean"], b["pixel_std_sem"]),
                             "better", 0.0)


# ----------------------------------------------------------------------------------------------------------------
# Deciding


def counts(record: Mapping) -> tuple[int, int]:
    """(valid images, images) of a measured row, over all its seeds."""
    return sum(s["valid"] for s in record["per_seed"]), sum(s["count"] for s in record["per_seed"])


def compare(claim: Claim, rows: Mapping, metric: str = "valid") -> Comparison | None:
    a, b = rows.get(claim.a), rows.get(claim.b)
    if not a or not b or not a["per_seed"] or not b["per_seed"]:
        return None
    if metric == "valid":
        return compare_proportions(claim.text, claim.a, claim.b, "exact validity", counts(a), counts(b), claim.kind,
                                   MARGIN)
    values = [[s[metric] for s in r["per_seed"]] for r in (a, b)]
    if min(map(len, values)) < 2:
        return None
    margin = RELATIVE_FID_MARGIN * float(np.mean(values[1]))
    return compare_means(claim.text, claim.a, claim.b, metric, *values, claim.kind, margin, higher_is_better=False)


def frontier_claims(rows: Mapping) -> list[Claim]:
    """Iso-FLOPs: each measured GtR point against, per other family, its cheapest measured point that costs at
    least as much (within 5 %): "GtR is better at no more FLOPs"."""
    out = []
    gtr_rows = [k for k in rows if ROW.get(k) and ROW[k].family == "gtr" and "gflops" in rows[k]]
    for g in sorted(gtr_rows, key=lambda k: rows[k]["gflops"]):
        for family in FAMILIES[:-1]:
            dearer = [k for k in rows if ROW.get(k) and ROW[k].family == family and "gflops" in rows[k]
                      and rows[k]["gflops"] >= 0.95 * rows[g]["gflops"] and "unguided" not in k]
            if dearer:
                b = min(dearer, key=lambda k: rows[k]["gflops"])
                out.append(Claim("frontier", f"{ROW[g].label.split(' =')[0]} beats {ROW[b].label} at no more FLOPs",
                                 g, b, "better"))
    return out


def verdicts(state: Mapping) -> dict[str, list[dict]]:
    """Every table's decided comparisons (validity; the FID analogue beside it, decided on its own)."""
    rows = state.get("rows", {})
    out = {}
    for table in ("table1", "table3", "table4", "table5", "cached", "frontier"):
        claims = [c for c in CLAIMS if c.table == table] if table != "frontier" else frontier_claims(rows)
        out[table] = []
        for metric in ("valid", "fid_scenes"):
            measured = [c for c in (compare(claim, rows, metric) for claim in claims) if c is not None]
            out[table] += [c.as_dict() for c in decide(measured)]
    if state.get("figure3"):
        out["figure3"] = [c.as_dict() for c in decide([figure3_comparison(state["figure3"])])]
    return out


def premise(state: Mapping) -> dict:
    """The gate on the stored rows: guided (the model's CFG) and unguided, 64 vs 8 AR steps."""
    rows = state.get("rows", {})
    gate = {}
    for name, (r64, r8) in {"guided": ("mar", "mar_8"), "unguided": ("mar_64_unguided", "mar_8_unguided")}.items():
        if rows.get(r64, {}).get("per_seed") and rows.get(r8, {}).get("per_seed"):
            gate[name] = premise_gate(*counts(rows[r64]), *counts(rows[r8]))
    gate["passed"] = len(gate) == 2 and all(g["passed"] for g in gate.values())
    return gate


CFG_ROWS = ("mar_64_unguided",) + tuple(r.key for r in ROWS if r.table == "cfg")  # the 64-step baseline by CFG


def best_cfg(state: Mapping) -> dict | None:
    """The guidance sweep's pick: the CFG scale of the 64-step row with the highest exact validity (CFG 1.0 is the
    unguided row), with every measured scale's validity; None before any sweep row is measured."""
    rows = state.get("rows", {})
    measured = {k: counts(rows[k]) for k in CFG_ROWS if rows.get(k, {}).get("per_seed")}
    if len(measured) < 2:
        return None
    scales = {k: float(rows[k]["sampler"]["cfg"]) for k in measured}
    best = max(measured, key=lambda k: (measured[k][0] / measured[k][1], -scales[k]))  # ties: the weaker guidance
    return {"cfg": scales[best], "row": best, "valid": {scales[k]: measured[k][0] / measured[k][1] for k in measured},
            "images": {scales[k]: measured[k][1] for k in measured}}


def load_state(path: Path, model: str, settings: Mapping) -> dict:
    """The study's results for this model (``model``: the weights' hash) and settings; other attempts are kept
    under ``attempts`` with their premise gate."""
    stored = json.loads(path.read_text()) if path.is_file() else {}
    current = stored.get("current")
    if current and (current.get("model") != model or current.get("settings") != dict(settings)):
        stored.setdefault("attempts", []).append({"model": current.get("model"), "settings": current.get("settings"),
                                                  "premise": premise(current), "rows": {
                                                      k: {"valid": counts(v), "gflops": v.get("gflops")}
                                                      for k, v in current.get("rows", {}).items() if v["per_seed"]}})
        current = None
    stored["current"] = current or {"model": model, "settings": dict(settings), "rows": {}}
    return stored


__all__ = ["CFG_ROWS", "CLAIMS", "Claim", "FAMILIES", "best_cfg", "GRID_ROWS", "figure3", "figure3_comparison", "sample_grid", "MARGIN", "PREMISE", "ROW", "ROWS", "Row", "TABLES", "compare", "counts",
           "frontier_claims", "load_state", "measure", "model_id", "weights_file", "premise", "rows_of", "verdicts"]
