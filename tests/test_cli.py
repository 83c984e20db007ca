"""``scripts/sample.py`` end to end, as a user runs it."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from PIL import Image

from conftest import REPO, one_line_exit, run_env, schema_state_dict, write_mar_checkpoint
from gtr.config import compose_config, preflight
from gtr.jobs.sample import main


def sample_cli(*overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/sample.py", "progress=false", *overrides], cwd=REPO,
                          capture_output=True, text=True, env=run_env(), timeout=600)


def test_tiny_model_end_to_end(tmp_path):
    out = tmp_path / "out"
    run = sample_cli("model=mar_tiny", "sampler=mar", "sampler.num_iter=4", "sampler.diffusion_steps=5", "classes=[1,7,3]", "images_per_class=2",
                     "batch_size=4", f"output_dir={out}")
    assert run.returncode == 0, run.stderr[-3000:]
    pngs = sorted((out / "images").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(6)]
    assert np.asarray(Image.open(pngs[0])).shape == (256, 256, 3)
    grid = np.asarray(Image.open(out / "grid.png"))
    assert grid.shape[0] > 3 * 256 and grid.shape[1] > 2 * 256  # 3 labelled rows of 2
    assert "num_iter: 4" in (out / "config.yaml").read_text()
    # the same seed gives the same files whatever the batch size
    again = sample_cli("model=mar_tiny", "sampler=mar", "sampler.num_iter=4", "sampler.diffusion_steps=5", "classes=[1,7,3]", "images_per_class=2",
                       "batch_size=5", f"output_dir={tmp_path / 'again'}")
    assert again.returncode == 0, again.stderr[-3000:]
    for p in pngs:
        a, b = np.asarray(Image.open(p), dtype=int), np.asarray(Image.open(tmp_path / "again" / "images" / p.name))
        assert np.abs(a - b).max() <= 1


def one_line_error(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 2, (run.returncode, run.stderr[-3000:])
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr[-3000:]
    return lines[0]


def test_missing_official_weights_is_one_line(tmp_path):
    line = one_line_error(sample_cli("model=mar_b", "sampler=mar", f"weights.root={tmp_path}",
                                     f"output_dir={tmp_path / 'out'}"))
    assert "MAR-B weights not found" in line and "model.checkpoint=" in line


def test_official_layout_mar_b_and_kl16_give_a_grid(tmp_path):
    """Schema-shaped random MAR-B and KL-16 checkpoints in the default folders are found and sampled."""
    root = tmp_path / "pretrained_models"
    write_mar_checkpoint(root / "mar" / "mar_base" / "checkpoint-last.pth", "mar_b")
    (root / "vae").mkdir()
    torch.save({"model": schema_state_dict("kl16", 0)}, root / "vae" / "kl16.ckpt")
    out = tmp_path / "out"
    run = sample_cli("model=mar_b", "sampler=mar", f"weights.root={root}", "classes=[207]", "images_per_class=1",
                     "sampler.num_iter=2", "sampler.diffusion_steps=2", f"output_dir={out}")
    assert run.returncode == 0, run.stderr[-3000:]
    assert (out / "grid.png").is_file() and (out / "images" / "00000.png").is_file()
    assert "cfg: 2.9" in (out / "config.yaml").read_text()  # MAR-B's official guidance scale by default
    # GtR's schedule with LazyMAR's caches: one config line (tiny step counts: the weights are random)
    composed = sample_cli("model=mar_b", "sampler=gtr_16", "cache=lazymar", f"weights.root={root}", "classes=[207]",
                          "images_per_class=1", "sampler.steps=[2,1,1]", "sampler.t_max=2", "sampler.t_min=1",
                          "sampler.t_rec=1", "sampler.t_detail=2", f"output_dir={tmp_path / 'composed'}")
    assert composed.returncode == 0, composed.stderr[-3000:]
    assert "name: lazymar" in (tmp_path / "composed" / "config.yaml").read_text()


def compose(*overrides: str):
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        return hydra_compose("sample", overrides=["progress=false", "model=mar_tiny", "sampler=mar", *overrides])


def in_process_error(capsys, *overrides: str) -> str:
    """The same entry point as the script (preflight, then the job), composed in-process."""
    args = ["progress=false", "model=mar_tiny", "sampler=mar", *overrides]

    def sample():
        preflight("sample", args)
        main(compose_config(*args))
    return one_line_exit(capsys, sample)


def test_bad_input_is_one_line(tmp_path, capsys):
    out = f"output_dir={tmp_path / 'out'}"
    assert "outside [0, 10)" in in_process_error(capsys, "classes=[3,12]", out)
    assert "num_iter=300 does not fit" in in_process_error(capsys, "sampler.num_iter=300", out)
    assert "cfg_schedule" in in_process_error(capsys, "sampler.cfg_schedule=cosine", out)
    assert "unknown precision" in in_process_error(capsys, "precision=fp4", out)
    assert "unknown rng mode 'global'" in in_process_error(capsys, "rng=global", out)
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "cannot write to output folder" in in_process_error(capsys, f"output_dir={blocker / 'sub'}")
    if not torch.cuda.is_available():
        assert "no CUDA GPU is visible" in in_process_error(capsys, "device=cuda", out)
    # values of the wrong type or sign, each one line naming the option
    assert "class labels must be integers, got 'a'" in in_process_error(capsys, "classes=[a]", out)
    assert "got 1.5" in in_process_error(capsys, "classes=[1.5]", out)
    assert "sampler.num_iter: '2.5' is not an integer" in in_process_error(capsys, "sampler.num_iter=2.5", out)
    assert "sampler.num_iter: 'abc' is not an integer" in in_process_error(capsys, "sampler.num_iter=abc", out)
    assert "seed must be an integer >= 0, got -1" in in_process_error(capsys, "seed=-1", out)
    assert "too large for rng=official" in in_process_error(capsys, "seed=4294967296", "rng=official", out)
    assert "cfg=-1.0 is negative" in in_process_error(capsys, "sampler.cfg=-1.0", out)
    assert "cfg=nan is not a finite number" in in_process_error(capsys, "sampler.cfg=nan", out)
    assert "temperature=inf is not a finite number" in in_process_error(capsys, "sampler.temperature=inf", out)
    assert "batch_size must be an integer >= 1, got 0" in in_process_error(capsys, "batch_size=0", out)
    assert "images_per_class: '2.5' is not an integer" in in_process_error(capsys, "images_per_class=2.5", out)
    assert "images_per_class must be an integer >= 1" in in_process_error(capsys, "images_per_class=0", out)


def test_a_folder_made_with_other_settings_is_refused(tmp_path, capsys):
    """As generate.py: a second run into a folder with other settings stops (nothing touched); the same settings
    draw the same images again."""
    from gtr.jobs.sample import sample_to_folder
    out = tmp_path / "out"
    base = ["sampler.num_iter=2", "sampler.diffusion_steps=2", "model.random_init=true", f"output_dir={out}"]
    sample_to_folder(compose("classes=[1,2]", "images_per_class=2", *base))
    before = {p.name: p.read_bytes() for p in (out / "images").glob("*.png")}
    assert len(before) == 4
    message = in_process_error(capsys, "classes=[1]", "images_per_class=1", *base)
    assert "holds images made with other settings (classes, images_per_class differ)" in message
    assert {p.name: p.read_bytes() for p in (out / "images").glob("*.png")} == before
    (out / "images" / "00009.png").write_bytes(b"")  # a stray numbered file is not left beside the new run
    sample_to_folder(compose("classes=[1,2]", "images_per_class=2", *base))
    assert {p.name: p.read_bytes() for p in (out / "images").glob("*.png")} == before


def test_non_float_weights_are_rejected(tmp_path):
    from safetensors.torch import save_file

    from gtr.errors import GtRError
    from gtr.models import build_mar, load_mar
    state = {k: v.to(torch.int32) for k, v in build_mar("mar_tiny").state_dict().items()}
    save_file(state, tmp_path / "int.safetensors")
    with pytest.raises(GtRError, match="non-float weights"):
        load_mar("mar_tiny", tmp_path / "int.safetensors")


def test_default_command_samples_the_shipped_model_with_gtr(tmp_path):
    """The README's first command, as a user runs it (output folder redirected)."""
    out = tmp_path / "out"
    run = sample_cli(f"output_dir={out}")
    assert run.returncode == 0, run.stderr[-3000:]
    config = (out / "config.yaml").read_text()
    assert "name: mar_fmnist" in config and "name: gtr" in config
    assert "mode=auto: eager (80 images" in run.stdout  # a demo grid does not wait for a compilation
    pngs = sorted((out / "images").glob("*.png"))
    assert len(pngs) == 80 and np.asarray(Image.open(pngs[0])).shape == (28, 28, 3)
    grid = np.asarray(Image.open(out / "grid.png"))
    assert grid.shape[0] > 10 * 84  # 10 labelled rows of 3x-enlarged tiles


def test_output_folders_are_named_by_sampler_config(tmp_path):
    """mar and mar_16 share the sampler name "mar": their default folders differ by the config's name."""
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "sample.py"), "progress=false", "sampler=mar_16",
                          "sampler.num_iter=2", "sampler.diffusion_steps=2", "classes=[0]", "images_per_class=1"],
                         cwd=tmp_path, capture_output=True, text=True, env=run_env(), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "samples" / "mar_fmnist_mar_16_seed0" / "grid.png").is_file()


def test_import_gtr_leaves_the_slow_libraries_for_when_they_are_used():
    """``--help`` and config errors stay fast: importing the package and its CLI loads neither timm nor diffusers
    (seconds each); building a model or a tokenizer does."""
    code = ("import sys, gtr, gtr.cli; heavy = ('diffusers', 'timm', 'transformers', 'wandb'); "
            "print(sorted(m for m in heavy if m in sys.modules)); gtr.build_mar('mar_tiny'); "
            "gtr.build_tokenizer('kl16_tiny'); print(sorted(m for m in heavy[:2] if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[:2] == ["[]", "['diffusers', 'timm']"]


@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "scripts").glob("*.py")))
def test_help_of_every_script_prints_usage_and_writes_nothing(script, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in (REPO / "results").rglob("*") if p.is_file()}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / script), "--help"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage" in proc.stdout.lower() or "== config ==" in proc.stdout.lower() or "powered by hydra" in \
        proc.stdout.lower(), proc.stdout[:500]
    after = {p: p.stat().st_mtime_ns for p in (REPO / "results").rglob("*") if p.is_file()}
    assert after == before and not list(tmp_path.iterdir())


def test_unconditional_grid(tmp_path):
    """``classes=null``: one labelled row of unconditional samples."""
    from gtr.jobs.sample import sample_to_folder
    out = tmp_path / "uncond"
    cfg = compose("classes=null", "images_per_class=3", "sampler.num_iter=2", "sampler.diffusion_steps=2",
                  "model.random_init=true", f"output_dir={out}")
    assert sample_to_folder(cfg) == out / "grid.png"
    assert sorted(p.name for p in (out / "images").glob("*.png")) == ["00000.png", "00001.png", "00002.png"]


def test_non_finite_samples_never_reach_a_png(tmp_path, capsys, monkeypatch):
    """A batch whose latents are not finite (overflow, broken weights) stops the run with one line, before its PNGs."""
    import gtr.jobs.common
    real = gtr.jobs.common.sample

    def poisoned(*args, **kwargs):
        latents = real(*args, **kwargs)
        return latents.index_fill(0, torch.tensor([0]), float("nan"))
    monkeypatch.setattr(gtr.jobs.common, "sample", poisoned)
    message = in_process_error(capsys, f"output_dir={tmp_path / 'out'}", "classes=[1]", "images_per_class=2")
    assert "non-finite latents for images 0-1" in message and "sampler mar" in message
    assert not list((tmp_path / "out").rglob("*.png"))


def test_ctrl_c_is_one_line_and_status_130(capsys):
    from gtr.errors import one_line_errors
    with pytest.raises(SystemExit) as exit_info:
        with one_line_errors():
            raise KeyboardInterrupt
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_info.value.code == 130 and len(lines) == 1 and lines[0].startswith("interrupted: re-run")
