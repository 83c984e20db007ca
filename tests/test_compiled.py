"""The executor's ``mode=compile`` equals eager mode to float tolerance on every sampler config (caches included),
on MAR and on LightGen, and keeps the per-image RNG's batch independence."""
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

import gtr
from conftest import DATA, REPO
from gtr.errors import GtRError
from gtr.models import LightGen, lightgen_config
from gtr.models.diffusion_head import head_step
from gtr.jobs.common import cache_from_config, sampler_from_config
from gtr.config import compose_config
from gtr.sampling.compiled import AUTO_COMPILE_MIN_IMAGES, JOB_MODES, check_mode, passes, resolve_mode
from gtr.sampling.executor import make_rng, run_schedule

# Few diffusion steps keep eager and compiled runs fast; every other option stays as the config says.
FEW_STEPS = {"diffusion_steps": 4, "upper_steps": 5, "lower_steps": 2, "t_max": 4, "t_min": 2, "t_rec": 2,
             "t_detail": 4, "constant_steps": 3}
CONFIGS = sorted(p.stem for p in (REPO / "configs" / "sampler").glob("*.yaml"))
# A config that is another one with fewer AR steps runs the same code, compiled again for new shapes (1-3 minutes each
# on a 2-core CPU): the full-step config stands for it (disa for disa_8/disa_16, mar for mar_8/mar_16, and so on).
FEWER_STEPS = ("disa_8", "disa_16", "mar_8", "mar_16", "halton_8", "gtr_8", "lazymar_8")
MAR_CONFIGS = [c for c in CONFIGS if "lightgen" not in c and c not in FEWER_STEPS]
# Compiling is most of these tests' cost, and compiled passes are kept with the model: under pytest-xdist the whole
# module runs in one worker (``--dist loadgroup``), so each model is compiled once, not once per worker.
pytestmark = pytest.mark.xdist_group("compiled")


# Fewer AR steps too: compiling is paid per distinct shape (tokens known at a step), and a config's code paths (its
# order, stages, FTS, diffusion-step schedule, cache) are all taken in a few steps. 8 keeps LazyMAR's cached steps
# (5-7) in the run.
FEW_AR_STEPS = 8


def composed(model: str, config: str):
    cfg = compose_config(f"model={model}", f"sampler={config}")
    options = OmegaConf.to_container(cfg.sampler, resolve=True)
    options.update({k: v for k, v in FEW_STEPS.items() if k in options})
    if options["name"] == "gtr":
        options["steps"] = [3] + [1] * (options["num_stages"] - 1)
    elif "num_iter" in options:
        options["num_iter"] = min(options["num_iter"], FEW_AR_STEPS)
    return sampler_from_config(options, cfg.diffusion), cache_from_config(cfg.get("cache"))


def assert_equal_to_tolerance(compiled: torch.Tensor, eager: torch.Tensor) -> None:
    assert compiled.shape == eager.shape and torch.isfinite(compiled).all()
    error = ((compiled - eager).abs().max() / eager.abs().max()).item()
    assert error < 1e-4, error
    assert not torch.equal(eager, torch.zeros_like(eager))


@pytest.fixture(scope="module")
def mar_tiny():
    model = gtr.build_mar("mar_tiny", seed=0)
    with torch.no_grad():  # the official init zeroes the head's output: draw every weight instead
        generator = torch.Generator().manual_seed(0)
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
    return model


@pytest.mark.parametrize("config", MAR_CONFIGS)
def test_compiled_equals_eager_on_every_mar_sampler_config(mar_tiny, config):
    sampler, cache = composed("mar_tiny", config)
    labels = torch.tensor([3, 7])
    eager = gtr.sample(mar_tiny, sampler, labels, seed=5, cache=cache)
    compiled = gtr.sample(mar_tiny, sampler, labels, seed=5, cache=cache, mode="compile")
    assert_equal_to_tolerance(compiled, eager)


def test_compiled_official_rng_and_unguided_and_unconditional(mar_tiny):
    sampler = gtr.build_sampler("gtr", steps=[4, 1, 1], diffusion="constant", constant_steps=3, cfg=1.0)
    for kwargs in [dict(labels=[1, 2], rng="official"), dict(labels=None, num_images=2)]:
        eager = gtr.sample(mar_tiny, sampler, seed=2, **kwargs)
        assert_equal_to_tolerance(gtr.sample(mar_tiny, sampler, seed=2, mode="compile", **kwargs), eager)


def test_compiled_per_image_rng_is_independent_of_the_batch(mar_tiny):
    sampler = gtr.build_sampler("gtr", steps=[8, 4, 4], t_max=4, t_min=2, t_rec=2, t_detail=4)
    batch = gtr.sample(mar_tiny, sampler, [4, 5, 6], seed=1, mode="compile")
    part = gtr.sample(mar_tiny, sampler, [5, 6], seed=1, image_ids=[1, 2], mode="compile")
    assert ((batch[1:] - part).abs().max() / part.abs().max()).item() < 1e-4


def test_compiled_passes_are_kept_outside_the_state_dict(mar_tiny):
    keys = list(mar_tiny.state_dict())
    assert passes(mar_tiny, "compile") is passes(mar_tiny, "compile")  # compiled once per model
    assert list(mar_tiny.state_dict()) == keys and passes(mar_tiny, "eager").step is None


def test_changed_weights_are_compiled_again_not_served_stale():
    """Freezing makes the weights constants of the compiled code: after the parameters change in place, the
    compiled head step must follow the new weights, as the eager one does (the head alone: compiling is the cost)."""
    model = gtr.build_mar("mar_tiny", seed=1)
    net = model.diffloss.net
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
        g = torch.Generator().manual_seed(0)
        x, noise = torch.randn(3, model.token_dim, generator=g), torch.randn(3, model.token_dim, generator=g)
        width = net.input_proj.out_features
        t_emb, c_emb = torch.randn(1, width, generator=g), torch.randn(3, width, generator=g)
        coef = torch.rand(7, generator=g)
        args, one_step = (x, t_emb, c_emb, coef, noise, None), (x, (t_emb,), c_emb, (coef,), (noise,), None)
        first = passes(model, "compile").step(*one_step)
        assert_equal_to_tolerance(first, head_step(net, *args))
        net.final_layer.linear.weight.mul_(3.0)
        eager = head_step(net, *args)
        assert not torch.allclose(eager, first, atol=1e-4)
        assert_equal_to_tolerance(passes(model, "compile").step(*one_step), eager)


def test_compiled_equals_eager_on_lightgen():
    """GtR with FTS on LightGen (compiling a second model is the expensive part: one config)."""
    case = torch.load(DATA / "tiny_lightgen_parity.pt", weights_only=True)
    model = LightGen(lightgen_config("lightgen_tiny")).eval()
    model.load_state_dict(case["checkpoint"]["model"], strict=True)
    sampler, cache = composed("lightgen_tiny", "gtr_lightgen")
    runs = [run_schedule(model, sampler, case["texts"], make_rng("per_image", 2, 0, None, "cpu"), cache=cache,
                         mode=mode) for mode in ("eager", "compile")]
    assert_equal_to_tolerance(runs[1], runs[0])


def test_bad_mode_is_one_line_before_any_work(mar_tiny, monkeypatch):
    with pytest.raises(GtRError, match="unknown executor mode 'fast': choose one of eager, compile"):
        gtr.sample(mar_tiny, gtr.build_sampler("mar", num_iter=2), [0], mode="fast")
    monkeypatch.setattr("gtr.sampling.compiled.shutil.which", lambda name: None)
    with pytest.raises(GtRError, match="needs a C\\+\\+ compiler"):
        check_mode("compile", "cpu")
    with pytest.raises(GtRError, match="mode=cudagraphs captures CUDA graphs, so it needs a CUDA GPU"):
        check_mode("cudagraphs", "cpu")


def test_python_headers_are_checked_before_compiling(monkeypatch, tmp_path):
    """Inductor builds its kernels as Python extensions: without Python.h (a system Python without its -dev
    package) torch.compile fails deep inside its first call."""
    monkeypatch.setattr("gtr.sampling.compiled.sysconfig.get_paths", lambda: {"include": str(tmp_path)})
    with pytest.raises(GtRError, match="needs the Python headers .* or use mode=eager"):
        check_mode("compile", "cpu")
    assert resolve_mode("auto", "cpu", 10**6) == ("eager", "mode=auto: eager (mode=compile needs the Python headers "
                                                  "(torch.compile builds its kernels as Python extensions): install "
                                                  "them (e.g. apt-get install python3-dev))")


def test_auto_mode_compiles_only_where_it_is_measured_to_pay_off(monkeypatch):
    least = AUTO_COMPILE_MIN_IMAGES["cpu"]
    assert resolve_mode("eager", "cpu", 10**6) == ("eager", None)  # an explicit mode is kept, and not announced
    assert resolve_mode("compile", "cpu", 1) == ("compile", None)
    mode, why = resolve_mode("auto", "cpu", least - 1)
    assert mode == "eager" and f"{least - 1:,} images: compiling pays off from {least:,}" in why
    mode, why = resolve_mode("auto", "cpu", least)
    assert mode == "compile" and why.startswith("mode=auto: compile") and "mode=eager turns it off" in why
    mode, why = resolve_mode("auto", "cuda", 10**6)  # not measured on a GPU yet: eager, whatever the count
    assert mode == "eager" and "not yet measured on cuda" in why
    mode, why = resolve_mode("auto", "cpu", least, "bf16")  # measured in fp32 only
    assert mode == "eager" and "measured in fp32 only, this run is bf16" in why
    monkeypatch.setattr("gtr.sampling.compiled.shutil.which", lambda name: None)
    mode, why = resolve_mode("auto", "cpu", least)  # cannot compile here: eager, and says why
    assert mode == "eager" and "needs a C++ compiler" in why
    with pytest.raises(GtRError, match="mode=auto is a job option"):
        check_mode("auto", "cpu")  # gtr.sample has no run to count
    check_mode("auto", "cpu", JOB_MODES)


def test_a_job_decides_auto_by_its_whole_run_and_says_so_on_rank_0(monkeypatch, capsys):
    from gtr.jobs.common import Run
    monkeypatch.setitem(AUTO_COMPILE_MIN_IMAGES, "cpu", 100)
    cfg = compose_config("model=mar_tiny", "sampler=mar")
    assert cfg.mode == "auto"  # the jobs' default

    def load(images: int, rank: int = 0, all_ok=lambda ok: ok) -> Run:
        runtime = SimpleNamespace(rank=rank, world=2, all_ok=all_ok)  # a sharded run's gtr.jobs.distributed.Distributed
        return Run.configure(cfg, torch.device("cpu")).load("class", images=images, runtime=runtime)

    assert load(100, rank=1).mode == "compile" and capsys.readouterr().out == ""  # ranks > 0 decide alike, silently
    assert load(99).mode == "eager" and "mode=auto: eager (99 images" in capsys.readouterr().out
    run = load(100, all_ok=lambda ok: False)  # another rank cannot compile: all run eager, as one
    assert run.mode == "eager" and "another rank of this run cannot compile" in capsys.readouterr().out


def test_many_models_in_one_process_stay_compiled():
    """Each model instance adds its own compiled versions of the same function (its weights are constants): past
    Dynamo's default limit of 8 the later models would silently run uncompiled (a benchmark of MAR-B/L/H in one
    process would time eager code as compiled)."""
    from torch._dynamo.utils import counters

    from gtr.sampling.compiled import _compile

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.linear(x).relu()

    before = counters["stats"]["unique_graphs"]
    with torch.no_grad():
        for _ in range(10):
            model, x = Tiny(), torch.ones(3, 4)
            assert torch.allclose(_compile(model.forward, torch.device("cpu"))(x), model(x))
    assert counters["stats"]["unique_graphs"] - before == 10
