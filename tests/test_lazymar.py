"""LazyMAR as a cache on any schedule: with every step full it is the cache-free run; cached, it stays close while
skipping real computation; ``mar + cache=lazymar`` takes the pre-refactor sampler's decisions and gives its outputs; the FLOPs counter counts exactly
what its cached steps run; and it composes with GtR, DiSA and every other schedule."""
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import gtr
from gtr.errors import GtRError
from gtr.eval.flops import FlopsCounter
from gtr.models import cached
from gtr.models.registry import PRESETS
from gtr.jobs.common import cache_from_config, load_configured_model, sampler_from_config, sampling_options
from gtr.config import compose_config
from gtr.sampling import build_cache, build_sampler
from gtr.sampling.lazymar import KEEP_RATIOS, LazyMARRunner
from gtr.sampling.runner import ModelRunner

# On the 7x7 toy grid (3 decoder layers): prune after layer 1, keep half, refresh every 3rd step from step 2.
CACHED = dict(start_step=2, refresh_every=3, prune_layer=1, keep_ratios=[0.5])
MAR16 = dict(num_iter=16, cfg=4.0)
FEW_DIFFUSION = dict(diffusion_steps=10)  # counting FLOPs of every call is slow: fewer head steps, the same walk
REFERENCE = Path(__file__).parent / "data" / "lazymar_reference.pt"


@pytest.fixture(scope="module")
def fmnist():
    return load_configured_model(compose_config("model=mar_fmnist"), torch.device("cpu"))


def test_released_defaults():
    c = build_cache("lazymar")
    assert [i for i in range(64) if c.full_step(i)] == [0, 1, 2, 3, 4, 5, 14, 23, 32, 41, 50, 59]
    assert [i for i, mode in enumerate(c.walk(64)) if mode.full] == [0, 1, 2, 3, 4, 5, 14, 23, 32, 41, 50, 59]
    assert len(KEEP_RATIOS) == 41 and KEEP_RATIOS[19] == 1.0 and KEEP_RATIOS[20] == 0.6 and KEEP_RATIOS[40] == 0.05
    assert [c.keep_ratio(i) for i in (40, 63, 200)] == [0.05] * 3  # the last ratio holds after
    modes = c.walk(64)
    assert c.keep_count(modes[30], 4, 4, 320) == 48 and c.keep_count(modes[60], 4, 4, 320) == 23  # 320 x 0.15; 4+4+15
    assert [i for i in range(100) if c.head_full(i, 100)] == [0, 7, 14, 21, 28, 35, 42, 49, 56, 63, 70, 77, 84, 91,
                                                              98, 99]
    assert [i for i in range(100) if c.head_recompute(i, 100) and not c.head_full(i, 100)] == [92, 93, 94, 95, 96, 97]
    for bad, match in ((dict(start_step=0), "start_step"), (dict(step_map="linear"), "step_map"),
                       (dict(keep_ratios=[1.5]), "keep_ratios"), (dict(num_iter=8), "no option")):
        with pytest.raises(GtRError, match=match):
            build_cache("lazymar", **bad)
    with pytest.raises(GtRError, match="LazyMAR is a cache"):
        build_sampler("lazymar")


def test_step_maps_on_short_plans():
    """index: the raw rule on any plan (a 9-step plan: steps 0-5 full, no pruning); fraction: the plan stretched
    onto 64 steps (identical at 64 steps)."""
    index, fraction = build_cache("lazymar"), build_cache("lazymar", step_map="fraction")
    assert [m.full for m in index.walk(9)] == [True] * 6 + [False] * 3
    assert all(m.keep_ratio == 1.0 for m in index.walk(19))
    assert fraction.walk(64) == index.walk(64)
    assert [s for s, m in enumerate(fraction.walk(19)) if m.full] == [0, 1, 4, 7, 9, 12, 15, 17]
    assert [m.keep_ratio for m in fraction.walk(19)][6:9] == [0.6, 0.5, 0.4]


def same(out: torch.Tensor, saved: torch.Tensor) -> None:
    """Equal up to rounding: CPU kinds round otherwise (1e-5 seen between AVX2 and AVX-512 kernels); a changed
    computation moves the latents by 0.1 and more."""
    torch.testing.assert_close(out, saved, rtol=0, atol=1e-3,
                               msg=lambda m: f"differs from the pre-refactor LazyMAR sampler beyond rounding: {m}")


@contextmanager
def replayed(decisions: list):
    """Runs with the saved pruning decisions: each decision of today's code is checked against the saved one (the
    same similarities up to rounding, and the saved choice a lowest-``keep`` choice under today's similarities up to
    rounding), then the saved choice is taken, so that a near-tie a CPU kind breaks otherwise cannot move the output."""
    pending = list(decisions)

    def select(similarity: torch.Tensor, keep: int) -> torch.Tensor:
        assert pending, "today's code prunes more often than the pre-refactor sampler did"
        saved_similarity, saved_order = pending.pop(0)
        torch.testing.assert_close(similarity, saved_similarity, rtol=0, atol=1e-4)
        kept = saved_order[:, :keep].sort(dim=1).values
        bound = similarity.sort(dim=1).values[:, keep - 1:keep]
        assert (similarity.gather(1, kept) <= bound + 1e-5).all(), "a saved pruning choice is not among today's lowest"
        return kept

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cached, "select_kept", select)
        yield
    assert not pending, f"today's code took {len(decisions) - len(pending)} of the {len(decisions)} saved decisions"


def test_sampler_lazymar_keeps_todays_outputs(fmnist, fmnist16):
    """Saved from the LazyMAR sampler before caching became its own axis (one thread, as there; the pruning decisions
    saved with the outputs): ``mar + cache=lazymar`` must take the same decisions and reproduce the outputs up to
    rounding, pruning and the LightGen port included, on any CPU kind. tests/data/lazymar_reference_case.py wrote
    the file from the pre-refactor code."""
    reference = torch.load(REFERENCE, weights_only=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        labels = torch.arange(4)
        # the Fashion-MNIST models' configs clip diffusion timesteps at 950 (diffusion.clip_timestep)
        with replayed(reference["mar_fmnist/pruned/decisions"]):
            pruned = gtr.sample(fmnist, build_sampler("mar", clip_timestep=950, **MAR16), labels, seed=3,
                                cache=build_cache("lazymar", **CACHED))
        same(pruned, reference["mar_fmnist/pruned"])
        options, cache = sampling_options("mar_fmnist16", "lazymar", {"diffusion_steps": 20, "cfg": 4.0})
        with replayed(reference["mar_fmnist16/released/decisions"]):
            released = gtr.sample(fmnist16, sampler_from_config(options, {"clip_timestep": 950}), labels[:2], seed=1,
                                  cache=cache_from_config(cache))
        same(released, reference["mar_fmnist16/released"])
        from test_lightgen import _parity_model
        from gtr.sampling.executor import make_rng, run_schedule
        model, texts = _parity_model()
        with replayed(reference["lightgen_tiny/pruned/decisions"]):
            port = run_schedule(model, build_sampler("mar", num_iter=12, diffusion_steps=8, cfg=4.0,
                                                     cfg_schedule="constant"),
                                texts, make_rng("per_image", 2, 0, None, "cpu"),
                                cache=build_cache("lazymar", start_step=2, refresh_every=4, prune_layer=0,
                                                  keep_ratios=[0.5]))
        same(port, reference["lightgen_tiny/pruned"])
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("schedule", [dict(name="mar", num_iter=8), dict(name="gtr", steps=[4, 2, 2]),
                                      dict(name="disa", num_iter=8, upper_steps=10, lower_steps=4),
                                      dict(name="halton", num_iter=8)])
def test_refreshed_every_step_equals_the_cache_free_run(fmnist, schedule):
    labels = torch.arange(6)
    sampler = build_sampler(**{**schedule, "cfg": 4.0})
    plain = gtr.sample(fmnist, sampler, labels, seed=0)
    full = build_cache("lazymar", start_step=8, head_refresh_every=1, prune_layer=1)
    assert torch.equal(gtr.sample(fmnist, sampler, labels, seed=0, cache=full), plain)


def test_cached_run_differs_from_mar_within_tolerance(fmnist):
    labels = torch.arange(10)
    mar = gtr.sample(fmnist, build_sampler("mar", **MAR16), labels, seed=0)
    for options in (CACHED, {**CACHED, "head_cache": False}, {**CACHED, "start_step": 16}):
        lazy = gtr.sample(fmnist, build_sampler("mar", **MAR16), labels, seed=0, cache=build_cache("lazymar", **options))
        gap = (lazy - mar).abs().mean() / mar.std()
        # measured 0.06-0.09 of the latents' std: an approximation of MAR, not another sampler
        assert 0 < gap < 0.25, (options, gap)


@pytest.fixture(scope="module")
def fmnist16():
    return load_configured_model(compose_config("model=mar_fmnist16"), torch.device("cpu"))


# The paper's configs on the 16x16 testbed, diffusion steps cut (the transformer's caching does not depend on them).
# CFG 4.0: with guidance, as the LazyMAR paper runs it (its condition cache saves the unconditional pass); the
# testbed's own default is unguided.
FEW_STEPS = {"gtr_16+lazymar": dict(t_max=6, t_min=3, t_rec=3, t_detail=6, cfg=4.0),
             "gtr_8+lazymar": dict(t_max=6, t_min=3, t_rec=3, t_detail=6, cfg=4.0),
             "disa+lazymar": dict(upper_steps=6, lower_steps=2, cfg=4.0)}


@pytest.mark.parametrize("key", list(FEW_STEPS))
def test_compositions_run_and_count_what_they_execute(monkeypatch, fmnist16, key):
    """GtR / DiSA schedules with LazyMAR's caches on the 16x16 testbed: they run, stay close to the cache-free
    schedule, and the counter's transformer FLOPs equal what the cached run executes (and are fewer)."""
    model = fmnist16
    options, cache_options = sampling_options("mar_fmnist16", key, FEW_STEPS[key])
    diffusion = compose_config("model=mar_fmnist16").diffusion  # the testbed's clip_timestep (950)
    sampler, cache = sampler_from_config(options, diffusion), cache_from_config(cache_options)
    labels = torch.arange(2)
    spent = _measure(monkeypatch, LazyMARRunner, sampler, model, labels, cache)
    counted = FlopsCounter(PRESETS["mar_fmnist16"]).sample(sampler, sampler.clip_timestep, cache)
    assert spent["transformer"] == len(labels) * (counted.encoder + counted.decoder)
    plain = FlopsCounter(PRESETS["mar_fmnist16"]).sample(sampler, sampler.clip_timestep)
    assert counted.encoder + counted.decoder < 0.8 * (plain.encoder + plain.decoder)
    assert counted.diffusion < plain.diffusion
    # The token caches keep the samples close (measured 0.04 of the latents' std); the head cache reuses MLP outputs
    # across diffusion steps, crude at these 6 steps (0.5; 0.16 at the configs' own 50/20 steps), so it is left out.
    tokens_only = cache_from_config({**cache_options, "head_cache": False})
    lazy = gtr.sample(model, sampler, labels, seed=0, cache=tokens_only)
    reference = gtr.sample(model, sampler, labels, seed=0)
    assert 0 < ((lazy - reference).abs().mean() / reference.std()).item() < 0.15


def test_cache_is_a_config_group_beside_the_sampler():
    """``cache=lazymar`` with any sampler; ``sampler=lazymar`` selects the cache itself (``cache=none`` turns it
    off); output folders are named by both (``gtr_16+lazymar``), so no two of them share (and resume) one."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from gtr.config import CONFIGS

    def composed(*overrides):
        with initialize_config_dir(str(CONFIGS), version_base="1.3"):
            cfg = compose("sample", overrides=["model=mar_tiny", *overrides], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        try:
            return cfg.sampler.name, cfg.cache.name, cfg.output_dir
        finally:
            HydraConfig.instance().cfg = None

    assert composed("sampler=gtr_16", "cache=lazymar") == ("gtr", "lazymar", "samples/mar_tiny_gtr_16+lazymar_seed0")
    assert composed("sampler=lazymar") == ("mar", "lazymar", "samples/mar_tiny_lazymar_seed0")
    assert composed("sampler=lazymar_8") == ("mar", "lazymar", "samples/mar_tiny_lazymar_8_seed0")
    assert composed("sampler=lazymar", "cache=none") == ("mar", "none", "samples/mar_tiny_lazymar_seed0")
    assert composed("sampler=gtr_16") == ("gtr", "none", "samples/mar_tiny_gtr_16_seed0")


def _measure(monkeypatch, runner_cls, sampler, model, labels, cache=None):
    """Matmul FLOPs the sampler's transformer and diffusion calls really run (MATH attention, as the counter)."""
    spent = {"transformer": 0, "diffusion": 0}
    for name in spent:
        original = getattr(runner_cls, name)

        def counted(self, *args, _original=original, _name=name):
            with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
                out = _original(self, *args)
            spent[_name] += counter.get_total_flops()
            return out
        monkeypatch.setattr(runner_cls, name, counted)
    gtr.sample(model, sampler, labels, seed=0, cache=cache)
    monkeypatch.undo()
    return spent


def test_cached_steps_skip_real_computation_as_counted(monkeypatch, fmnist):
    labels = torch.arange(2)
    sampler, cache = build_sampler("mar", **MAR16, **FEW_DIFFUSION), build_cache("lazymar", **CACHED)
    lazy = _measure(monkeypatch, LazyMARRunner, sampler, fmnist, labels, cache)
    mar = _measure(monkeypatch, ModelRunner, sampler, fmnist, labels)
    assert lazy["transformer"] < 0.75 * mar["transformer"] and lazy["diffusion"] < 0.5 * mar["diffusion"]
    counter = FlopsCounter(PRESETS["mar_fmnist"])
    counted = counter.sample(sampler, sampler.clip_timestep, cache)
    assert lazy["transformer"] == len(labels) * (counted.encoder + counted.decoder)  # exactly what the runner ran
    assert counter.sample(sampler, 950).total > 1.3 * counted.total


def test_counter_extensions_equal_direct_counts():
    tiny = FlopsCounter(PRESETS["mar_tiny"])
    assert tiny.cached_encoder(100, 7) == tiny._count_cached_encoder(100, 7)
    assert tiny.cached_decoder(77, 0) == tiny._count_cached_decoder(77, 0)
    assert tiny.cached_head(37, False, True, (1, 2, 3, 4)) == tiny._count_cached_head(37, False, True, (1, 2, 3, 4))


def test_paper_flops_of_the_step16_row():
    """The released defaults at 41 AR steps, 100 unclipped diffusion steps: the paper's MAR-B LazyMAR row 4.11 T."""
    flops = FlopsCounter(PRESETS["mar_b"]).sample(build_sampler("mar", num_iter=41, cfg=2.9), cache=build_cache("lazymar"))
    assert flops.tflops == pytest.approx(4.11, rel=5e-3)


def test_sampling_code_never_dispatches_on_model_classes():
    """Caches call what the model exposes (gtr.models.cached); no model class is named in gtr/sampling."""
    import re
    root = Path(gtr.__file__).parent / "sampling"
    for path in root.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"isinstance\([^)]*\b(MAR|LightGen)\b", text), path
        assert not re.search(r"from gtr\.models\.(mar|lightgen) import", text), path
