"""The paper's claims measured on the project's own Fashion-MNIST models, where anyone can re-run them.

Two testbeds (:data:`TESTBEDS`): ``fmnist`` (``mar_fmnist``, 7x7 tokens: the embedded default, on which the paper's
premise does not hold) and ``fmnist16`` (``mar_fmnist16``, a 16x16 token grid as ImageNet MAR's, on which the paper's
sampler configs run unchanged). For every row of a testbed: per-image FLOPs (counted), sampling time, and quality
from the shipped classifier (FID analogue, IS analogue, class accuracy), mean and std over seeds; plus the Figure-3
experiment. Results are saved after every row (a re-run skips finished rows) and the report (Markdown, a
speed-quality plot, the Figure-3 strips) is rewritten from them. ``scripts/toy_study.py`` is the entry point.

Verdicts (:func:`claim_lines`) follow :mod:`gtr.study.statistics`: each pair of rows is compared on the FID analogue
by Welch's t-test over seeds (accuracy beside it, over images), Holm-corrected over the report's comparisons, with a
margin of 5 % of the compared row's FID analogue; a claim *holds* when all its pairs hold, *does not hold* when any
does not, and is *undecided* otherwise.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from gtr.errors import GtRError
from gtr.eval.paper import TABLE1, TABLE3, TABLE4, TABLE5, paper_values
from gtr.files import write_json, write_text
from gtr.images import pyplot
from gtr.study.statistics import RELATIVE_FID_MARGIN

# ----------------------------------------------------------------------------------------------------------------
# What a study is made of


@dataclass(frozen=True)
class Row:
    key: str
    group: str   # baseline | gtr | ablation | baselines | order | cached | attempt (plot markers)
    label: str
    config: str  # a sampler config of configs/sampler ("+<cache>": with that cache), run as it is ...
    overrides: Mapping = field(default_factory=dict)  # ... except for these sampler options


@dataclass(frozen=True)
class Claim:
    """``a`` is expected to be ``direction`` than ``b`` for every pair: "better" (lower FID analogue), "worse", or
    "not worse" (the paper claims equal quality)."""
    text: str
    pairs: tuple[tuple[str, str], ...]
    direction: str


@dataclass(frozen=True)
class Testbed:
    name: str
    model: str            # model config
    title: str
    stem: str             # results/<stem>.{json,md}, <stem>_{speed_quality,ablations,figure3}.png
    reference_row: str    # speed-ups are relative to it; Figure 3 completes its samples
    rows: tuple[Row, ...]
    quick_rows: tuple[str, ...]
    claims: tuple[Claim, ...]
    figure3_completion_steps: int
    paper_tables: bool = False  # report the rows in the layout of the paper's Tables 1, 3, 4, 5
    ablation_base: str = ""     # the GtR row the ablation/order rows vary: they get their own figure against it


# The 7x7 study: GtR operating points re-tuned for 49 tokens (stages 12/12/25).
FMNIST_ROWS = (
    Row("mar_16", "baseline", "MAR, 16 AR steps (reference)", "mar", {"num_iter": 16}),
    Row("gtr_6", "gtr", "GtR rates 2.67/10.67/64 -> (4, 1, 1) = 6 steps", "gtr"),
    Row("gtr_10", "gtr", "GtR (6, 2, 2) = 10 steps", "gtr", {"steps": [6, 2, 2]}),
    Row("mar_8", "baseline", "MAR, 8 AR steps", "mar", {"num_iter": 8}),
    Row("gtr_dagger", "ablation", "GtR† only (stage-aware steps, random order)", "gtr",
        {"steps": [6, 2, 2], "token_order": "random", "fts": False}),
    Row("gtr_star", "ablation", "GtR* only (constant 100 diffusion steps, GtR order)", "gtr",
        {"steps": [6, 2, 2], "diffusion": "constant", "constant_steps": 100, "fts": False}),
    Row("gtr_no_fts", "ablation", "GtR without FTS", "gtr", {"steps": [6, 2, 2], "fts": False}),
    Row("gtr_13", "gtr", "GtR (8, 3, 2) = 13 steps", "gtr", {"steps": [8, 3, 2]}),
    Row("mar_32", "baseline", "MAR, 32 AR steps", "mar", {"num_iter": 32}),
    Row("mar_4", "baseline", "MAR, 4 AR steps", "mar", {"num_iter": 4}),
    Row("disa_16", "baselines", "DiSA 50->5, 16 AR steps", "disa", {"num_iter": 16}),
    Row("halton_16", "baselines", "Halton, 16 AR steps", "halton", {"num_iter": 16}),
    Row("disa_8", "baselines", "DiSA 50->5, 8 AR steps", "disa", {"num_iter": 8}),
    Row("halton_8", "baselines", "Halton, 8 AR steps", "halton", {"num_iter": 8}),
    Row("lazymar_16", "baselines", "LazyMAR, 16 AR steps (released defaults; 3 decoder layers: no pruning)",
        "lazymar", {"num_iter": 16}),
    Row("gtr_10_lazymar", "cached", "GtR (6, 2, 2) + LazyMAR's caches (not in the paper)", "gtr+lazymar",
        {"steps": [6, 2, 2]}),
    Row("disa_16_lazymar", "cached", "DiSA 16 AR steps + LazyMAR's caches (not in the paper)", "disa+lazymar",
        {"num_iter": 16}),
    Row("gtr_fts_random", "ablation", "FTS: random tokens", "gtr", {"steps": [6, 2, 2], "fts_selection": "random"}),
    Row("gtr_fts_low", "ablation", "FTS: low-frequency tokens", "gtr", {"steps": [6, 2, 2], "fts_selection": "low"}),
    Row("gtr_fts_all", "ablation", "FTS: all tokens (Full-Enhanced)", "gtr",
        {"steps": [6, 2, 2], "fts_selection": "all"}),
    Row("order_raster", "order", "Table 5: raster order", "gtr", {"steps": [6, 2, 2], "token_order": "raster"}),
    Row("order_subsample", "order", "Table 5: subsample order", "gtr", {"steps": [6, 2, 2], "token_order": "subsample"}),
)
FMNIST_CLAIMS = (
    Claim("Premise: parallel decoding costs quality (the baseline at 8 and 4 AR steps is worse than at 16)",
          (("mar_8", "mar_16"), ("mar_4", "mar_16")), "worse"),
    Claim("GtR keeps the 16-step baseline's quality at a fraction of its FLOPs", (("gtr_10", "mar_16"),), "not worse"),
    Claim("GtR beats step reduction at a similar or higher speed-up", (("gtr_6", "mar_4"), ("gtr_10", "mar_8")),
          "better"),
    Claim("GtR beats the schedule baselines (DiSA, Halton) at similar FLOPs",
          (("gtr_10", "disa_16"), ("gtr_6", "disa_8")), "better"),
    Claim("The GtR order matters (GtR† with a random order is worse)", (("gtr_no_fts", "gtr_dagger"),), "better"),
    Claim("FTS helps (high-frequency selection beats none / random / low)",
          (("gtr_10", "gtr_no_fts"), ("gtr_10", "gtr_fts_random"), ("gtr_10", "gtr_fts_low")), "better"),
    Claim("Table 5: the GtR order beats raster and subsample orders",
          (("gtr_10", "order_raster"), ("gtr_10", "order_subsample")), "better"),
    Claim("Not in the paper: LazyMAR's caches on top of GtR / DiSA keep their quality",
          (("gtr_10_lazymar", "gtr_10"), ("disa_16_lazymar", "disa_16")), "not worse"),
)


# The 16x16 testbed's rows: the premise baselines first (the study is only valid if it holds), then every Table 1,
# 3, 4, 5 row that applies to one model, each the paper's own sampler config (the same grid as ImageNet MAR, so
# nothing is re-tuned), then GtR / DiSA with LazyMAR's caches (not in the paper).
FMNIST16_ROWS = (
    # The model's CFG is 1.0 (no guidance): at CFG 4.0 the premise does not hold (attempt 1, below).
    Row("mar_8", "baseline", "MAR, 8 AR steps (Step=8)", "mar_8"),
    Row("mar", "baseline", "MAR, 64 AR steps (reference)", "mar"),
    Row("mar_16", "baseline", "MAR, 16 AR steps (Step=16)", "mar_16"),
    Row("mar_32", "baseline", "MAR, 32 AR steps", "mar", {"num_iter": 32}),
    # Premise, attempt 1: the baselines at CFG 4.0 (the guidance scale with the best FID analogue).
    Row("mar_cfg4", "attempt", "MAR, 64 AR steps, CFG 4.0 (premise attempt 1)", "mar", {"cfg": 4.0}),
    Row("mar_32_cfg4", "attempt", "MAR, 32 AR steps, CFG 4.0 (premise attempt 1)", "mar", {"num_iter": 32, "cfg": 4.0}),
    Row("mar_16_cfg4", "attempt", "MAR, 16 AR steps, CFG 4.0 (premise attempt 1)", "mar_16", {"cfg": 4.0}),
    Row("mar_8_cfg4", "attempt", "MAR, 8 AR steps, CFG 4.0 (premise attempt 1)", "mar_8", {"cfg": 4.0}),
    Row("gtr_16", "gtr", "GtR (15, 2, 2) = 19 AR steps (16-step block)", "gtr_16"),
    Row("gtr_8", "gtr", "GtR (7, 1, 1) = 9 AR steps (8-step block)", "gtr_8"),
    Row("halton", "baselines", "Halton, 16 AR steps", "halton"),
    Row("disa", "baselines", "DiSA 50->5, 24 AR steps (\"Step=16\" block)", "disa"),
    Row("lazymar", "baselines", "LazyMAR, 41 AR steps (\"Step=16\" block)", "lazymar"),
    Row("halton_8", "baselines", "Halton, 8 AR steps", "halton_8"),
    Row("disa_16", "baselines", "DiSA 50->5, 16 AR steps (\"Step=8\" block)", "disa_16"),
    Row("disa_8", "baselines", "DiSA 50->5, 8 AR steps", "disa_8"),
    Row("lazymar_8", "baselines", "LazyMAR, 15 AR steps (\"Step=8\" block)", "lazymar_8"),
    Row("gtr", "gtr", "GtR as literally stated (rates 2.67/10.67/64: 32 AR steps)", "gtr"),
    Row("gtr_star", "ablation", "GtR* only (constant 50 diffusion steps, GtR order)", "gtr_star",
        {"constant_steps": 50}),
    Row("gtr_dagger", "ablation", "GtR† only (stage-aware steps, random order)", "gtr_dagger"),
    Row("gtr_16_no_fts", "ablation", "GtR* + GtR†, no FTS", "gtr_16", {"fts": False}),
    Row("gtr_fts_random", "ablation", "FTS: random tokens", "gtr_fts_random"),
    Row("gtr_fts_low", "ablation", "FTS: low-frequency tokens", "gtr_fts_low"),
    Row("gtr_fts_all", "ablation", "FTS: all tokens (Full-Enhanced)", "gtr_fts_all"),
    Row("gtr_order_raster", "order", "Table 5: raster order", "gtr_order_raster"),
    Row("gtr_order_subsample", "order", "Table 5: subsample order", "gtr_order_subsample"),
    Row("gtr_order_random", "order", "Table 5: random order", "gtr_order_random"),
    Row("gtr_16_lazymar", "cached", "GtR-16 + LazyMAR's caches (not in the paper)", "gtr_16+lazymar"),
    Row("gtr_8_lazymar", "cached", "GtR-8 + LazyMAR's caches (not in the paper)", "gtr_8+lazymar"),
    Row("disa_lazymar", "cached", "DiSA 24 AR steps + LazyMAR's caches (not in the paper)", "disa+lazymar"),
)


FMNIST16_CLAIMS = (
    Claim("Premise: parallel decoding costs quality (8 AR steps worse than 64)", (("mar_8", "mar"),), "worse"),
    Claim("Premise: 16 AR steps are worse than 64", (("mar_16", "mar"),), "worse"),
    Claim("Premise, attempt 1 (CFG 4.0): 8 AR steps worse than 64", (("mar_8_cfg4", "mar_cfg4"),), "worse"),
    Claim("Premise, attempt 1 (CFG 4.0): 16 AR steps worse than 64", (("mar_16_cfg4", "mar_cfg4"),), "worse"),
    Claim("GtR-16 keeps the 64-step baseline's quality", (("gtr_16", "mar"),), "not worse"),
    Claim("GtR-8 keeps the 64-step baseline's quality", (("gtr_8", "mar"),), "not worse"),
    Claim("GtR beats step reduction at a higher speed-up (GtR-16 vs Step=16, GtR-8 vs Step=8)",
          (("gtr_16", "mar_16"), ("gtr_8", "mar_8")), "better"),
    Claim("GtR-16 beats the schedule baselines of its block (Halton, DiSA, LazyMAR)",
          (("gtr_16", "halton"), ("gtr_16", "disa"), ("gtr_16", "lazymar")), "better"),
    Claim("GtR-8 beats the schedule baselines of its block (Halton, DiSA, LazyMAR)",
          (("gtr_8", "halton_8"), ("gtr_8", "disa_16"), ("gtr_8", "lazymar_8")), "better"),
    Claim("Table 3: GtR* alone (GtR's order and stages, constant diffusion steps) keeps the 64-step quality",
          (("gtr_star", "mar"),), "not worse"),
    Claim("Table 3: GtR† alone (stage-aware diffusion steps, random order) keeps the 64-step quality",
          (("gtr_dagger", "mar"),), "not worse"),
    Claim("Table 3: GtR* + GtR† without FTS keeps the 64-step quality", (("gtr_16_no_fts", "mar"),), "not worse"),
    Claim("Table 4: FTS helps (high-frequency selection beats none / random / low)",
          (("gtr_16", "gtr_16_no_fts"), ("gtr_16", "gtr_fts_random"), ("gtr_16", "gtr_fts_low")), "better"),
    Claim("Table 4: high-frequency FTS keeps the quality of enhancing every token", (("gtr_16", "gtr_fts_all"),),
          "not worse"),
    Claim("Table 5: the GtR order beats raster, subsample and random orders",
          (("gtr_16", "gtr_order_raster"), ("gtr_16", "gtr_order_subsample"), ("gtr_16", "gtr_order_random")),
          "better"),
    Claim("Not in the paper: LazyMAR's caches on top of GtR / DiSA keep their quality",
          (("gtr_16_lazymar", "gtr_16"), ("gtr_8_lazymar", "gtr_8"), ("disa_lazymar", "disa")), "not worse"),
)

TESTBEDS = {
    "fmnist": Testbed("fmnist", "mar_fmnist", "Toy study: the paper's claims on the Fashion-MNIST MAR (7x7 tokens)",
                      "toy_study", "mar_16", FMNIST_ROWS, ("mar_16", "gtr_10", "gtr_dagger", "halton_8"),
                      FMNIST_CLAIMS, figure3_completion_steps=8, ablation_base="gtr_10"),
    "fmnist16": Testbed("fmnist16", "mar_fmnist16",
                        "Does GtR hold? The paper's claims on the 16x16-token Fashion-MNIST MAR", "toy_study_16x16",
                        "mar", FMNIST16_ROWS, ("mar", "mar_8", "gtr_16", "gtr_dagger"), FMNIST16_CLAIMS,
                        figure3_completion_steps=32, paper_tables=True, ablation_base="gtr_16"),
}


def testbed(name: str) -> Testbed:
    if name not in TESTBEDS:
        raise GtRError(f"unknown testbed {name!r}: choose one of {', '.join(TESTBEDS)}")
    return TESTBEDS[name]


# ----------------------------------------------------------------------------------------------------------------
# Statistics and verdicts


def stat(per_seed: Sequence[Mapping], key: str) -> tuple[float, float]:
    """Mean and (sample) std over seeds; std 0 for a single seed."""
    values = np.array([r[key] for r in per_seed], dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0




def comparisons(claim: Claim, rows: Mapping, samples: int) -> list | None:
    """The claim's pairs as :class:`gtr.study.statistics.Comparison` on the FID analogue (Welch over seeds) and on
    class accuracy (a proportion of ``samples`` images per seed); None when a row is not measured. "worse" claims
    are "better" claims with the rows swapped; "not worse" ones are non-inferiority claims."""
    from gtr.study.statistics import compare_means, compare_proportions
    if any(a not in rows or b not in rows for a, b in claim.pairs):
        return None
    out = []
    for a, b in claim.pairs:
        if claim.direction == "worse":
            a, b = b, a
        kind = "noninferior" if claim.direction == "not worse" else "better"
        fid = [[r["fid_fmnist"] for r in rows[k]["per_seed"]] for k in (a, b)]
        margin = RELATIVE_FID_MARGIN * float(np.mean(fid[1]))
        out.append(compare_means(claim.text, a, b, "FID analogue", *fid, kind, margin))
        hits = [(round(sum(r["accuracy"] * samples for r in rows[k]["per_seed"])), samples * len(rows[k]["per_seed"]))
                for k in (a, b)]
        out.append(compare_proportions(claim.text, a, b, "accuracy", *hits, kind, 0.05))
    return out


def verdict(decided: Sequence) -> str:
    """A claim's verdict from its decided comparisons on one metric: holds if every pair holds, does not hold if
    any pair does not, else undecided."""
    words = [c.verdict for c in decided]
    if "does not hold" in words:
        return "does not hold"
    return "holds" if words and all(w == "holds" for w in words) else "undecided"


def figure3_comparison(f3: Mapping):
    """Figure 3's claim (a spread-out half pins the image down more than a contiguous one: less pixel spread across
    seeds), as a z-test of the two mean spreads over the reference images."""
    from gtr.study.statistics import compare_estimates
    c, b = f3["checkerboard"], f3["block"]
    return compare_estimates("Figure 3: a spread-out (checkerboard) half pins the image down more than a contiguous "
                             "half (less pixel spread across seeds)", "checkerboard", "block", "pixel std across seeds",
                             (c["pixel_std_mean"], c["pixel_std_sem"]), (b["pixel_std_mean"], b["pixel_std_sem"]),
                             "better", 0.0)


def claim_lines(claims: Sequence[Claim], rows: Mapping, samples: int, f3: Mapping | None = None) -> list[str]:
    """One line per claim with its verdict on the FID analogue (accuracy beside it, decided on its own), every
    comparison Holm-corrected with the others of the list (per metric), then the rule."""
    from gtr.study.statistics import decide
    found = [(claim, comparisons(claim, rows, samples)) for claim in claims]
    flat = [c for _, cs in found if cs for c in cs]
    extra = [figure3_comparison(f3)] if f3 else []
    decided = {}
    for metric in ("FID analogue", "accuracy"):
        group = [c for c in flat if c.metric == metric] + (extra if metric == "FID analogue" else [])
        decided.update({id(c): d for c, d in zip(group, decide(group))})
    out = []
    for claim, cs in found:
        if cs is None:
            out.append(f"- {claim.text}: **not measured yet**.")
            continue
        fid = [decided[id(c)] for c in cs if c.metric == "FID analogue"]
        acc = [decided[id(c)] for c in cs if c.metric == "accuracy"]
        detail = "; ".join(f"{c.a} vs {c.b}: FID analogue {c.a_value:.2f} vs {c.b_value:.2f}, difference "
                           f"{c.difference:+.2f} [{c.ci[0]:+.2f}, {c.ci[1]:+.2f}], Holm p {_p(c):.3g}" for c in fid)
        out.append(f"- {claim.text}: **{verdict(fid)}** ({detail}); on accuracy: {verdict(acc)}.")
    if f3:
        c = decided[id(extra[0])]
        out.append(f"- {c.claim}: **{c.verdict}** ({c.a_value:.4f} vs {c.b_value:.4f}, difference "
                   f"{c.difference:+.4f} [{c.ci[0]:+.4f}, {c.ci[1]:+.4f}], z-test over the reference images, "
                   f"Holm p {_p(c):.3g}).")
    out += ["", "Rule (the scenes study's, gtr/study/statistics.py): each pair is a one-sided test at 5 %, "
            "Holm-corrected over every comparison of this list (per metric). FID analogue: Welch's t-test over the "
            f"seeds; accuracy: the two-proportion z-test over images. Differences are positive when the claim's "
            f"side is better. A \"keeps quality\" claim holds when its side is shown to be worse by less than the "
            f"margin ({RELATIVE_FID_MARGIN:.0%} of the compared row's FID analogue; 5 points of accuracy), and does not "
            "hold when it is shown to be worse by more; a \"beats\" claim holds when its side is shown to be "
            "better at all, and does not hold when its advantage is shown to be below the margin. Otherwise "
            "**undecided**: the data cannot tell. A claim holds when all its pairs hold, and does not hold when any "
            "does not."]
    return out


def _p(c) -> float:
    return c.p_fails_holm if c.verdict == "does not hold" else c.p_holds_holm


# ----------------------------------------------------------------------------------------------------------------
# Measuring


def sampling_options(bed: Testbed, row: Row) -> tuple[dict, dict]:
    """The resolved sampler and cache options of a row's config on the testbed's model, with the row's overrides."""
    from gtr.jobs.common import sampling_options as resolved
    return resolved(bed.model, row.config, row.overrides)


def built(row_state: Mapping, clip_timestep: int | None):
    """The sampler and cache of a measured row (rows measured before the cache axis have no ``cache``), respacing
    diffusion steps with the testbed model's ``clip_timestep``."""
    from gtr.jobs.common import cache_from_config, sampler_from_config
    return (sampler_from_config(row_state["sampler"], {"clip_timestep": clip_timestep}),
            cache_from_config(row_state.get("cache")))


def generate(model, tokenizer, sampler, count: int, seed: int, batch_size: int, cache=None
             ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``count`` class-balanced images (label = id % 10) from seed ``seed``: uint8 [N, H, W, 3], labels, sampling
    seconds (the VAE not timed)."""
    from gtr.jobs.common import batches_of_rank, render
    labels = torch.arange(count) % 10
    timings = []
    images = [im.cpu() for _, im in render(model, sampler, tokenizer, batches_of_rank(count, batch_size),
                                           lambda ids: labels[ids], seed=seed, precision="fp32", cache=cache,
                                           timings=timings)]
    return torch.cat(images), labels, sum(timings)


def figure3(bed: Testbed, model, tokenizer, extractor, count: int, seeds: int, out: Path) -> dict:
    """Half the tokens of the model's own samples (the reference row's sampler) given as a checkerboard or as a
    block (the top rows), the rest completed with ``seeds`` seeds. Spread = per image, the std across seeds (of
    pixels in [0, 1] and of classifier features), averaged over images (± standard error). Saves the labelled
    strips of the first image."""
    from gtr.sampling import sample
    from gtr.eval.fid import extract
    from gtr.models.registry import preset
    from gtr.jobs.common import sampler_from_config
    from gtr.sampling.completion import CompletionSampler, block_mask, checkerboard_mask
    from gtr.tokenizers import to_uint8
    rows = {r.key: r for r in bed.rows}
    clip = preset(bed.model).config.clip_timestep  # the model's diffusion.clip_timestep
    base = sampler_from_config(sampling_options(bed, rows[bed.reference_row])[0], {"clip_timestep": clip})
    labels = torch.arange(count) % 10
    reference = model.patchify(sample(model, base, labels, seed=10_000))
    reference_image = to_uint8(tokenizer.decode(model.unpatchify(reference[:1])))[0].cpu()
    side = model.seq_h
    result, strips = {}, {}
    for pattern, mask in (("checkerboard", checkerboard_mask(side, side)), ("block", block_mask(side, side))):
        completion = CompletionSampler(num_iter=bed.figure3_completion_steps, diffusion_steps=base.diffusion_steps,
                                       cfg=base.cfg, given_tokens=reference, given=mask)
        completion.clip_timestep = base.clip_timestep
        stack = torch.stack([to_uint8(tokenizer.decode(sample(model, completion, labels, seed=s))).cpu()
                             for s in range(seeds)])  # [S, N, H, W, 3]
        pixel_std = (stack[..., 0].double() / 255).std(dim=0).mean(dim=(1, 2))
        feature_std = torch.stack([extract(extractor, [images])[0] for images in stack]).std(dim=0).mean(dim=1)
        result[pattern] = {"pixel_std_mean": pixel_std.mean().item(),
                           "pixel_std_sem": (pixel_std.std() / count**0.5).item(),
                           "feature_std_mean": feature_std.mean().item(),
                           "feature_std_sem": (feature_std.std() / count**0.5).item(), "images": count,
                           "seeds": seeds}
        strips[pattern] = (mask, stack[:, 0])
    figure3_plot(reference_image, strips, out.with_name(f"{out.name}_figure3.png"))
    return result


def figure3_plot(reference: torch.Tensor, strips: Mapping[str, tuple[torch.Tensor, torch.Tensor]], path: Path) -> None:
    """One labelled row per pattern: the reference sample, the half given to the model (the rest dimmed), then the
    completions of each seed."""
    plt = pyplot()
    h = reference.shape[0]
    seeds = next(iter(strips.values()))[1].shape[0]
    fig, axes = plt.subplots(len(strips), seeds + 2, figsize=(1.3 * (seeds + 2), 1.55 * len(strips)), squeeze=False)
    for r, (pattern, (mask, completions)) in enumerate(strips.items()):
        side = round(mask.numel() ** 0.5)  # the mask is flat over the square token grid
        cell = torch.as_tensor(mask, dtype=torch.float32).reshape(side, side)
        cell = cell.repeat_interleave(h // side, 0).repeat_interleave(h // side, 1)
        given = reference[..., 0].float() * (0.25 + 0.75 * cell)
        panels = [(reference[..., 0], "reference sample"), (given, f"given: {pattern}")]
        panels += [(completions[s][..., 0], f"seed {s}") for s in range(seeds)]
        for c, (image, title) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(image.numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=7)
        axes[r, 0].set_ylabel(f"{pattern} half", fontsize=8)
    fig.suptitle("Figure 3: the other half completed with different seeds (less spread = the given half pins the "
                 "image down)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


STORED = ("fid_fmnist", "is_fmnist", "accuracy", "count")  # the scores kept per row and seed


def measure_rows(bed: Testbed, state: dict, keys: Sequence[str], device: torch.device, *, samples: int,
                 seeds: Sequence[int], batch_size: int, figure3_images: int, data_root, out: Path,
                 command: str) -> None:
    """Quality (and time on ``device``) of the rows ``keys`` and the Figure-3 experiment, saved after each row."""
    from gtr.data import FashionMNIST
    from gtr.eval.fashion import FashionExtractor, parse_reference, reference_statistics
    from gtr.eval.metrics import Reference, score
    from gtr.eval.flops import FlopsCounter
    from gtr.eval.latency import device_name
    from gtr.jobs.common import cache_record, load_configured_model, load_image_tokenizer
    from gtr.config import compose_config
    cfg = compose_config(f"model={bed.model}")
    model = load_configured_model(cfg, device)
    tokenizer = load_image_tokenizer(cfg.model.tokenizer, cfg.weights, device)
    extractor = FashionExtractor()
    split, size = parse_reference(cfg.model.metrics.reference)
    reference = Reference(reference_statistics(extractor, split, data_root, size=size))
    resized = f", resized to {size}x{size} as the training data" if size != 28 else ""
    state["reference"] = f"the {len(FashionMNIST(split, data_root))} Fashion-MNIST {split} images{resized}"
    if device.type == state["settings"].get("device", "cpu"):
        state["device"], state["command"] = device_name(device), command
    elif keys:
        state.setdefault("added", []).append({"rows": list(keys), "device": device_name(device), "command": command})
    json_path = out.with_suffix(".json")
    if figure3_images and "figure3" not in state:
        state["figure3"] = figure3(bed, model, tokenizer, extractor, figure3_images, 7, out)
        write_json(json_path, state)
    counter = FlopsCounter(model.config)
    rows = {r.key: r for r in bed.rows}
    for key in keys:
        row = rows[key]
        options, cache_options = sampling_options(bed, row)
        cached = cache_record(cache_options)
        sampler, cache = built({"sampler": options, **cached}, cfg.diffusion.clip_timestep)
        # Seeds finished by a stopped run of the same row and settings are kept (a long row survives a stop).
        partial = state.setdefault("partial", {}).get(key, {})
        done = partial.get("per_seed", []) if partial.get("sampler") == options and \
            partial.get("cache") == cached.get("cache") else []
        per_seed = [r for r in done if r["seed"] in seeds]
        for seed in seeds:
            if any(r["seed"] == seed for r in per_seed):
                continue
            images, labels, seconds = generate(model, tokenizer, sampler, samples, seed, batch_size, cache)
            scored = score(images.split(1000), extractor, reference, labels=labels)
            scores = {k: scored[k] for k in STORED}
            per_seed.append({"seed": seed, "s_per_image": seconds / samples, **scores})
            print(f"{key} seed {seed}: {per_seed[-1]}", flush=True)
            state["partial"][key] = {"sampler": options, "cache": cached.get("cache"), "per_seed": per_seed}
            write_json(json_path, state)
        per_seed.sort(key=lambda r: list(seeds).index(r["seed"]))
        state["partial"].pop(key, None)
        flops = counter.sample(sampler, cfg.diffusion.clip_timestep, cache).total
        state["rows"][key] = {"group": row.group, "label": row.label, "config": row.config, "sampler": options, **cached,
                              **({} if device.type == state["settings"].get("device", "cpu")
                                 else {"device": device_name(device)}),
                              "gflops": flops / 1e9, "ar_steps": len(sampler.plan(model.seq_h, model.seq_w)),
                              "per_seed": per_seed}
        write_json(json_path, state)
        report(bed, state, out)  # partial results are readable while the study runs


def _signature(sampler: Mapping, cache: Mapping | None) -> str:
    import json

    from gtr.jobs.common import cache_record
    return json.dumps([sampler, cache_record(cache).get("cache")], sort_keys=True)


def adopt_measured(bed: Testbed, state: dict) -> None:
    """Match stored rows to the testbed's rows by what they run (resolved sampler and cache options), not by key: a
    renamed row keeps its measurements, a row whose config now resolves to other options (a model default changed)
    is measured again, and stored rows no current row runs move to ``state["retired"]`` (kept, not reported)."""
    stored = {**state.get("retired", {}), **state["rows"]}
    by_signature = {_signature(row["sampler"], row.get("cache")): key for key, row in stored.items()}
    rows, used = {}, set()
    for row in bed.rows:
        options, cache = sampling_options(bed, row)
        key = by_signature.get(_signature(options, cache))
        if key is not None:
            rows[row.key] = {**stored[key], "group": row.group, "label": row.label, "config": row.config}
            used.add(key)
    state["rows"] = rows
    retired = {key: row for key, row in stored.items() if key not in used}
    if retired:
        state["retired"] = retired
    else:
        state.pop("retired", None)


def time_on_cpu(bed: Testbed, state: dict, keys: Sequence[str], images: int, json_path: Path,
                passes: int = 1) -> None:
    """Sampling time per image on this machine's CPU for the rows that lack it: ``passes`` rounds over the rows,
    each timing one batch of ``images`` images per row after a small warm-up, every other round in reverse order,
    so the rows are timed side by side and a slow spell of a shared machine lands on all of them. A row's time is
    its median over the rounds (the rounds are kept: ``cpu_s_per_image_passes``). Finished rounds survive a stop."""
    import statistics

    from gtr.sampling import sample
    from gtr.eval.latency import device_name
    from gtr.config import compose_config
    from gtr.jobs.common import load_configured_model
    rows = [key for key in keys if key in state["rows"] and "cpu_s_per_image" not in state["rows"][key]]
    if not rows:
        return
    cfg = compose_config(f"model={bed.model}")
    model = load_configured_model(cfg, torch.device("cpu"))
    labels = torch.arange(images) % 10
    cpu = device_name(torch.device("cpu"))
    timing = state.get("cpu_timing", {})
    if timing.get("device") not in (None, cpu):
        raise GtRError(f"results were timed on another CPU ({timing['device']}); remove the "
                       "cpu_s_per_image fields (or pass --cpu-timing 0) to time them all on this one")
    if (timing.get("images"), timing.get("passes", 1)) != (images, passes):  # other settings: start the rounds over
        for key in rows:
            state["rows"][key].pop("cpu_s_per_image_passes", None)
    state["cpu_timing"] = {"device": cpu, "images": images, "passes": passes}
    samplers = {key: built(state["rows"][key], cfg.diffusion.clip_timestep) for key in rows}
    for round_ in range(passes):
        for key in rows if round_ % 2 == 0 else rows[::-1]:
            row = state["rows"][key]
            if len(row.setdefault("cpu_s_per_image_passes", [])) > round_:
                continue  # timed before a stop
            sampler, cache = samplers[key]
            sample(model, sampler, labels[:2], seed=0, cache=cache)  # warm-up
            start = time.perf_counter()
            sample(model, sampler, labels, seed=0, cache=cache)
            row["cpu_s_per_image_passes"].append((time.perf_counter() - start) / images)
            print(f"{key} (round {round_ + 1}/{passes}): {row['cpu_s_per_image_passes'][-1] * 1e3:.1f} ms per "
                  "image on the CPU", flush=True)
            write_json(json_path, state)
    for key in rows:
        row = state["rows"][key]
        row["cpu_s_per_image"] = statistics.median(row["cpu_s_per_image_passes"])
    write_json(json_path, state)


def run(bed: Testbed, *, keys: Sequence[str] | None = None, samples: int = 1000, seeds: Sequence[int] = (0, 1, 2),
        batch_size: int = 500, figure3_images: int = 100, device: str = "cpu", cpu_timing: int = 100,
        retime: bool = False, timing_passes: int = 3, data_root=None, out: Path, command: str) -> dict:
    """Measure what is missing (rows, Figure 3, CPU timings of GPU-measured rows), then write the report.
    ``retime``: drop every CPU timing and time all measured rows again on this CPU side by side, in
    ``timing_passes`` interleaved rounds (median per row); a stopped retime resumes from its finished rounds."""
    keys = list(keys or [r.key for r in bed.rows])
    unknown = sorted(set(keys) - {r.key for r in bed.rows})
    if unknown:
        raise GtRError(f"unknown row(s) {', '.join(unknown)} for testbed {bed.name}: choose from "
                       f"{', '.join(r.key for r in bed.rows)}")
    torch.set_grad_enabled(False)
    dev = torch.device(device)
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path = out.with_suffix(".json")
    import json
    state = json.loads(json_path.read_text()) if json_path.is_file() else {}
    settings = {"samples": samples, "seeds": list(seeds)}
    stored = state.get("settings", {})
    if {k: stored.get(k) for k in settings} != settings:  # other sample counts or seeds start over
        state = {"settings": {**settings, "device": dev.type}, "rows": {}}
    # Rows may be added on another device than the study's (its "settings" device): quality does not depend on it;
    # their time over the quality runs is not compared with the others, and they get a CPU timing as GPU rows do.
    adopt_measured(bed, state)
    missing = [key for key in keys if key not in state["rows"]]
    if missing or (figure3_images and "figure3" not in state):
        measure_rows(bed, state, missing, dev, samples=samples, seeds=seeds, batch_size=batch_size,
                     figure3_images=figure3_images, data_root=data_root, out=out, command=command)
    if retime:
        images = cpu_timing or 100
        resuming = state.get("retiming") == {"images": images, "passes": timing_passes}
        if not resuming:  # a new retime drops every CPU timing; a stopped one keeps its finished rounds
            for row in state["rows"].values():
                row.pop("cpu_s_per_image", None)
                row.pop("cpu_s_per_image_passes", None)
            state.pop("cpu_timing", None)
            state["retiming"] = {"images": images, "passes": timing_passes}
        time_on_cpu(bed, state, list(state["rows"]), images, json_path, passes=timing_passes)
        state.pop("retiming")
        write_json(json_path, state)
    elif cpu_timing and state["settings"].get("device", "cpu") != "cpu":  # a CPU study's own times are CPU times
        time_on_cpu(bed, state, keys, cpu_timing, json_path)
    report(bed, state, out)
    return state


# ----------------------------------------------------------------------------------------------------------------
# Reporting


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


MARKERS = {"baseline": ("o", "tab:blue"), "gtr": ("*", "tab:red"), "ablation": ("s", "tab:orange"),
           "baselines": ("D", "tab:green"), "order": ("^", "tab:purple"), "cached": ("P", "tab:brown"),
           "attempt": ("x", "0.45")}
GROUP_LABELS = {"attempt": "premise attempt 1 (CFG 4.0)"}


def _marker(group: str) -> dict:
    """errorbar() style of a row's group."""
    marker, colour = MARKERS.get(group, ("o", "0.3"))
    return {"fmt": marker, "color": colour, "capsize": 3, "markersize": 10 if marker == "*" else 6}


def _label_offsets() -> list[tuple[float, float, str, str]]:
    """Candidate label positions (offset in points, horizontal and vertical alignment): beside the marker first,
    then rings further out (drawn with a leader line)."""
    import math
    near = [(7, 0, "left", "center"), (-7, 0, "right", "center"), (0, 7, "center", "bottom"),
            (0, -7, "center", "top"), (6, 6, "left", "bottom"), (-6, 6, "right", "bottom"),
            (6, -6, "left", "top"), (-6, -6, "right", "top")]
    rings = []
    for r in (18, 28, 40, 54, 70):
        for angle in range(0, 360, 30):
            dx, dy = r * math.cos(math.radians(angle)), r * math.sin(math.radians(angle))
            rings.append((dx, dy, "left" if dx > 1 else "right" if dx < -1 else "center", "center"))
    return near + rings


def place_labels(ax, points: Sequence[tuple[float, float]], texts: Sequence[str], fontsize: float = 6.5,
                 obstacles: Sequence = ()) -> list:
    """Annotate each point with its text at the first candidate position where the label overlaps no other label,
    no marker, no ``obstacles`` (display-space boxes, e.g. error bars) and stays inside the axes (greedy, in
    display coordinates); labels away from their point get a leader line. Falls back to the least-overlapping
    position."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    r = 3 * fig.dpi / 72  # a marker's half size, points -> pixels
    markers = [Bbox.from_bounds(mx - r, my - r, 2 * r, 2 * r)
               for mx, my in (ax.transData.transform(p) for p in points)]
    blocked = markers + list(obstacles)
    placed, annotations = [], []
    for (x, y), text in zip(points, texts):
        best = None
        for dx, dy, ha, va in _label_offsets():
            far = abs(dx) + abs(dy) > 12
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                              ha=ha, va=va, arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.55",
                                                        "shrinkA": 1, "shrinkB": 4} if far else None)
            ann.update_positions(renderer)
            box = Text.get_window_extent(ann, renderer)  # the text, not its leader line
            overlap = sum(box.overlaps(b) for b in placed) + sum(box.overlaps(b) for b in blocked)
            overlap += 0 if (inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)) else 100
            if best is None or overlap < best[0]:
                if best is not None:
                    best[1].remove()
                best = (overlap, ann, box)
            else:
                ann.remove()
            if overlap == 0:
                break
        placed.append(best[2].expanded(1.06, 1.2))  # a little air between labels
        annotations.append(best[1])
    return annotations


def _errorbar_boxes(ax, points: Sequence[tuple[float, float]], stds: Sequence[float]) -> list:
    """Display-space boxes of vertical error bars (what a label should not cover)."""
    from matplotlib.transforms import Bbox
    boxes = []
    for (x, y), std in zip(points, stds):
        (x0, y0), (_, y1) = ax.transData.transform([(x, y - std), (x, y + std)])
        boxes.append(Bbox.from_extents(x0 - 3, min(y0, y1) - 2, x0 + 3, max(y0, y1) + 2))
    return boxes


ABLATION_GROUPS = ("ablation", "order")  # rows at one plan (the ablated GtR row's speed): their own figure


def plot(bed: Testbed, rows: Mapping, path: Path) -> None:
    """FID analogue and class accuracy against the FLOPs speed-up, every point labelled by its row; the ablations
    (all at one plan) are left to :func:`ablation_plot` when the testbed names their base row."""
    ref = rows.get(bed.reference_row)
    if not ref:
        return
    plt = pyplot()
    shown = {k: r for k, r in rows.items() if not (bed.ablation_base and r["group"] in ABLATION_GROUPS)}
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6))
    handles, drawn = {}, []
    for ax, metric, title in ((axes[0], "fid_fmnist", "FID analogue (lower is better)"),
                              (axes[1], "accuracy", "class accuracy (higher is better)")):
        points, stds = [], []
        for row in shown.values():
            mean, std = stat(row["per_seed"], metric)
            points.append((ref["gflops"] / row["gflops"], mean))
            stds.append(std)
            handle = ax.errorbar(*points[-1], yerr=std, **_marker(row["group"]))
            handles.setdefault(GROUP_LABELS.get(row["group"], row["group"]), handle)
        drawn.append((ax, points, stds))
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.xaxis.set_minor_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}x" if v in (2, 3, 5) else ""))
        ax.set_xlabel(f"speed-up in FLOPs vs {bed.reference_row} (log scale)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.margins(x=0.12, y=0.12)  # room for the labels of the outermost points
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    fig.suptitle(f"{bed.title} (mean ± std over seeds)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    for ax, points, stds in drawn:  # labels once the layout is final
        place_labels(ax, points, list(shown), obstacles=_errorbar_boxes(ax, points, stds))
    fig.savefig(path, dpi=130)
    plt.close(fig)


def ablation_plot(bed: Testbed, rows: Mapping, path: Path) -> bool:
    """Tables 3-5 at a glance: each ablation row's FID analogue and accuracy (mean ± std over seeds, one line per
    row, labelled on the axis) against the band of the GtR row they ablate (its mean ± std). False (nothing drawn)
    when the testbed names no base row or none of these rows is measured."""
    base = rows.get(bed.ablation_base)
    shown = [k for k, r in rows.items() if r["group"] in ABLATION_GROUPS]
    if base is None or not shown:
        return False
    plt = pyplot()
    keys = [bed.ablation_base, *shown]
    fig, axes = plt.subplots(1, 2, figsize=(11, 1.3 + 0.32 * len(keys)), sharey=True)
    for ax, metric, title in ((axes[0], "fid_fmnist", "FID analogue (lower is better)"),
                              (axes[1], "accuracy", "class accuracy (higher is better)")):
        mean, std = stat(base["per_seed"], metric)
        ax.axvspan(mean - std, mean + std, color="tab:red", alpha=0.15, lw=0,
                   label=f"{bed.ablation_base}: mean ± std")
        for y, key in enumerate(keys):
            m, s = stat(rows[key]["per_seed"], metric)
            ax.errorbar(m, y, xerr=s, **_marker(rows[key]["group"]))
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(range(len(keys)), [f"{k}  ({rows[k]['group']})" for k in keys], fontsize=8)
    axes[0].invert_yaxis()
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", fontsize=8, frameon=False)
    fig.suptitle(f"Ablations at {bed.ablation_base}'s plan (Tables 3-5): an error bar touching the band = equal "
                 "within error", fontsize=10)
    fig.tight_layout(rect=(0, 0.35 / (1.3 + 0.32 * len(keys)), 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return True
