"""Config composition: the model registry as Hydra's model group, typed schemas, and one-line errors at compose
time (before anything is loaded or written)."""
import dataclasses
import subprocess
import sys

import pytest
import torch
from hydra.core.config_store import ConfigStore

from conftest import REPO, one_line_exit, run_env
from gtr.config import compose_config, preflight
from gtr.errors import GtRError
from gtr.models import MAR, LightGen, build_model
from gtr.models.registry import REGISTRY, ModelConfig
from gtr.sampling import CACHES, SAMPLERS
from gtr.config.schema import options_schema


def preflight_error(capsys, job: str, *args: str) -> str:
    return one_line_exit(capsys, preflight, job, list(args))


@pytest.mark.parametrize("args, expected", [
    (["model=foo"], "no model config 'foo': choose one of lightgen, lightgen_scenes, lightgen_tiny, mar_b"),
    (["model=mar_bb"], "did you mean model=mar_b?"),
    (["sampler=gtrr"], "no sampler config 'gtrr' (did you mean sampler=gtr?)"),
    (["cache=lazy"], "no cache config 'lazy'"),
    (["batch_sise=3"], "unknown key 'batch_sise': did you mean batch_size?"),
    (["sampler.num_iterr=3", "sampler=mar"], "unknown key 'sampler.num_iterr': did you mean sampler.num_iter?"),
    (["model.tokenizer.nam=kl16"], "unknown key 'model.tokenizer.nam': did you mean model.tokenizer.name?"),
    (["batch_size=abc"], "batch_size: 'abc' is not an integer"),
    (["seed=1.5"], "seed: '1.5' is not an integer"),
    (["model.default_cfg=x"], "model.default_cfg: 'x' is not a float"),
    (["sampler.t_max=abc"], "sampler.t_max: 'abc' is not an integer"),
    (["sampler.rates=abc"], "sampler.rates: expected a list"),
    (["sampler.name=foo"], "unknown sampler 'foo' (sampler.name): choose one of mar, gtr"),
    (["cache=lazymar", "cache.start_step=x"], "cache.start_step: 'x' is not an integer"),
    (["weights.download=maybe"], "weights.download:"),
    (["seed=[1"], "cannot parse the command line"),
    (["seed=0,1"], "seed=0,1 lists several values: add --multirun"),
])
def test_composition_errors_are_one_line(capsys, args, expected):
    assert expected in preflight_error(capsys, "sample", *args)


def test_every_job_checks_its_own_schema(capsys):
    assert "did you mean train.steps?" in preflight_error(capsys, "train", "train.stepss=3")
    assert "num_images: 'many' is not an integer" in preflight_error(capsys, "generate", "num_images=many")
    assert "did you mean geneval.detector?" in preflight_error(capsys, "geneval", "geneval.detectr=hf")
    assert "images_per_prompt: 'x' is not an integer" in preflight_error(capsys, "sample_t2i", "images_per_prompt=x")


def test_a_sweep_is_checked_combination_by_combination(capsys):
    assert "no sampler config 'gtrr'" in preflight_error(capsys, "generate", "--multirun", "seed=0,1",
                                                         "sampler=gtr,gtrr")
    preflight("generate", ["--multirun", "seed=0,1", "sampler=gtr,mar_16", "hydra/launcher=slurm"])  # no error


def test_help_is_left_to_hydra_and_custom_config_folders_are_checked(tmp_path, capsys):
    for args in (["--help"], ["--hydra-help"], ["--cfg", "job"]):
        if "--cfg" in args:
            preflight("sample", args)  # composes (valid), returns
        else:
            assert preflight("sample", args) is None
    (tmp_path / "sampler").mkdir()
    (tmp_path / "sampler" / "mine.yaml").write_text("defaults:\n  - mar\n  - _self_\nnum_iter: 4\n")
    preflight("sample", ["--config-dir", str(tmp_path), "sampler=mine"])  # a user's config composes
    (tmp_path / "sampler" / "broken.yaml").write_text("name: mar\nnum_iter: [4\n")
    for args, message in ((["sampler=broken"], "broken.yaml:3 is not valid YAML"), (["foo=1"], "unknown key 'foo'")):
        with pytest.raises(SystemExit) as stop:
            preflight("sample", ["--config-dir", str(tmp_path), *args])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_compose_config_raises_one_line():
    with pytest.raises(GtRError, match="^no model config 'mar_xl'"):
        compose_config("model=mar_xl")
    cfg = compose_config("model=mar_b", "sampler=gtr_16")
    assert cfg.model.default_cfg == 2.9 and cfg.sampler.cfg == 2.9


def test_each_model_is_defined_once_in_the_registry():
    """The Hydra model group is the registry: no YAML copies, each entry composable and buildable."""
    assert not list((REPO / "configs" / "model").glob("*.yaml"))
    stored = {name.removesuffix(".yaml") for name in ConfigStore.instance().list("model")}
    assert stored == set(REGISTRY)
    for name, entry in REGISTRY.items():
        cfg = compose_config(f"model={name}", name="sample_t2i" if entry.config.condition == "text" else "sample")
        assert cfg.model.name == name == cfg.model.preset and cfg.model.title == entry.weights.name
        assert entry.family == ("lightgen" if entry.config.condition == "text" else "mar")
        with torch.device("meta"):
            model = build_model(name, seed=None, device="meta")
        assert isinstance(model, LightGen if entry.family == "lightgen" else MAR)
        assert entry.config.tokenizer.name and entry.config.default_cfg >= 1.0


def test_a_model_config_of_ones_own_starts_from_an_entry(tmp_path):
    """configs of one's own: model/<name>.yaml with ``defaults: [mar_tiny, _self_]`` in a search-path folder."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "my_tiny.yaml").write_text("defaults:\n  - mar_tiny\n  - _self_\nname: my_tiny\n"
                                                     "default_cfg: 1.5\n")
    cfg = compose_config("model=my_tiny", f"hydra.searchpath=[file://{tmp_path}]", hydra_node=True)
    assert cfg.model.preset == "mar_tiny" and cfg.model.name == "my_tiny" and cfg.sampler.cfg == 1.5
    (tmp_path / "model" / "typo.yaml").write_text("defaults:\n  - mar_tiny\n  - _self_\nname: typo\ndefault_cgf: 1\n")
    with pytest.raises(GtRError, match="default_cgf"):
        compose_config("model=typo", f"hydra.searchpath=[file://{tmp_path}]", hydra_node=True)


def test_sampler_and_cache_schemas_are_their_classes_fields():
    for kind, registry in (("sampler", SAMPLERS), ("cache", CACHES)):
        for name, cls in registry.items():
            schema = {f.name for f in dataclasses.fields(options_schema(kind, name, cls))}
            own = {f.name for f in dataclasses.fields(cls) if f.init} if dataclasses.is_dataclass(cls) else set()
            assert schema == own | {"name"}


def test_model_config_schema_covers_every_key_the_jobs_read():
    keys = {f.name for f in dataclasses.fields(ModelConfig)}
    assert {"preset", "condition", "default_cfg", "default_num_iter", "clip_timestep", "tokenizer", "metrics",
            "demo_classes", "class_names"} <= keys


def test_the_cli_exits_2_with_one_line():
    run = subprocess.run([sys.executable, "scripts/generate.py", "model=mar_fmnist", "sampler=gtr_166"], cwd=REPO,
                         capture_output=True, text=True, env=run_env(), timeout=300)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        run.stderr.strip().splitlines()[0]] and "did you mean sampler=gtr_16?" in run.stderr


def test_training_options_are_checked_by_their_job(capsys, tmp_path):
    assert "train.steps: 'abc' is not an integer" in preflight_error(capsys, "train", "train.steps=abc")
    assert "train.kl_weight: 'x' is not a float" in preflight_error(capsys, "train", "train=tokenizer",
                                                                    "train.kl_weight=x")
    assert "train.batch_size must be an integer >= 1, got 0" in preflight_error(capsys, "train", "train.batch_size=0")
    assert "no train config 'foo'" in preflight_error(capsys, "train", "train=foo")
    blocker = tmp_path / "file"
    blocker.write_text("")
    run = subprocess.run([sys.executable, "scripts/train.py", f"out_dir={blocker / 'sub'}"], cwd=REPO,
                         capture_output=True, text=True, env=run_env(), timeout=300)
    assert run.returncode == 2 and run.stderr.strip().startswith("error: cannot write to output folder")
    assert "set out_dir=" in run.stderr and "encoding" not in run.stdout  # before the data is read
    for job in ("tokenizer", "tokenizer16", "mar", "mar16", "classifier"):
        compose_config(f"train={job}", name="train")  # every shipped job fits its schema
