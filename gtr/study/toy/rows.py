"""The toy testbeds as data: each row a sampler config of configs/sampler (with overrides) on the testbed's
model, each claim a set of row pairs and an expected direction, each testbed its rows, claims and report layout."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


from gtr.errors import GtRError


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
