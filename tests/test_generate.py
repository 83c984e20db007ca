"""Evaluation-scale generation: identical bytes at any world size and across kills and restarts; scoring."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, run_env, write_random_inception

ARGS = ["model=mar_tiny", "sampler=mar", "sampler.num_iter=4", "sampler.diffusion_steps=3", "num_images=12",
        "batch_size=4", "images_per_class=2", "metrics.enabled=false", "progress=false"]


def run(out, *extra, launcher=(sys.executable,), **kwargs):
    cmd = [*launcher, str(REPO / "scripts" / "generate.py"), *ARGS, f"output_dir={out}", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("one_process")
    proc = run(out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def pngs(folder):
    return {p.name: p.read_bytes() for p in sorted((folder / "images").glob("*.png"))}


def test_one_process_writes_images_npz_and_results(reference):
    assert len(pngs(reference)) == 12
    with np.load(reference / "samples.npz") as data:
        assert data["arr_0"].shape == (12, 256, 256, 3) and data["arr_0"].dtype == np.uint8
    record = json.loads((reference / "results.json").read_text())
    assert record["num_images"] == 12 and record["world_size"] == 1 and record["git_commit"]
    assert record["mode"] == "eager"  # mode=auto, decided for 12 images on a CPU


def test_two_processes_write_the_same_bytes(reference, tmp_path):
    proc = run(tmp_path, launcher=(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert pngs(tmp_path) == pngs(reference)
    assert json.loads((tmp_path / "results.json").read_text())["world_size"] == 2


def test_killed_and_restarted_run_ends_with_the_same_bytes(reference, tmp_path):
    cmd = [sys.executable, str(REPO / "scripts" / "generate.py"), *ARGS, f"output_dir={tmp_path}"]
    for wait_for in (3, 7):  # kill after some images exist, twice, at different points
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 240
        while len(list((tmp_path / "images").glob("*.png"))) < wait_for and proc.poll() is None:
            assert time.time() < deadline
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    images = sorted((tmp_path / "images").glob("*.png"))
    images[0].write_bytes(images[0].read_bytes()[:50])  # a corrupt file (e.g. written by another tool) is redone
    Image.open(images[1]).convert("L").save(images[1])  # so are a greyscale copy and a resized one
    Image.open(images[2]).resize((8, 8)).save(images[2])
    (tmp_path / ".samples.npz.tmp").write_bytes(b"cut")  # and a pack cut short is cleared
    proc = run(tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert pngs(tmp_path) == pngs(reference)
    assert not [p for p in (tmp_path / "images").iterdir() if not p.name.endswith(".png")]  # no temp leftovers
    assert not (tmp_path / ".samples.npz.tmp").exists()


def test_bad_requests_are_one_line_errors(reference, tmp_path):
    proc = run(tmp_path / "new" / "run", "num_images=30")
    assert proc.returncode == 2 and "need 15 classes; mar_tiny has 10" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "new").exists()  # a refused run leaves no folder
    before = pngs(reference)
    proc = run(reference, "seed=5")  # resuming a folder made with other settings would mix two runs' images
    assert proc.returncode == 2 and "other settings (seed differ)" in proc.stderr and "output_dir=" in proc.stderr
    # batch size and executor mode can move a pixel of a few images: a resume under others would mix two runs
    proc = run(reference, "batch_size=6", "mode=compile")
    assert proc.returncode == 2 and "other settings (batch_size, mode differ)" in proc.stderr
    assert pngs(reference) == before


def test_a_corrupt_or_legacy_run_record(tmp_path):
    from gtr.errors import GtRError
    from gtr.jobs.output import claim_output
    settings = {"seed": 0, "batch_size": 4, "mode": "eager", "device_type": "cpu"}
    claim_output(tmp_path / "a", settings, rank=0, folders=[tmp_path / "a" / "images"])
    assert (tmp_path / "a" / "images").is_dir()
    claim_output(tmp_path / "a", settings, rank=0)
    (tmp_path / "a" / "run.json").write_text('{"seed": 0, "batch')
    with pytest.raises(GtRError, match="run.json is not the JSON record a run writes .*delete"):
        claim_output(tmp_path / "a", settings, rank=0)
    (tmp_path / "a" / "run.json").write_text('{"seed": 0}')  # written before batch size and mode were recorded
    claim_output(tmp_path / "a", settings, rank=0)
    with pytest.raises(GtRError, match="seed differ"):
        claim_output(tmp_path / "a", {**settings, "seed": 1}, rank=0)


def test_hydra_sweep_writes_one_result_per_point(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "generate.py"), "-m", *ARGS, "num_images=4",
                           "seed=0,1", f"hydra.sweep.dir={tmp_path}", f"output_dir={tmp_path}/s${{seed}}", "npz=false"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seeds = sorted(json.loads((tmp_path / f"s{s}" / "results.json").read_text())["seed"] for s in (0, 1))
    assert seeds == [0, 1]


def test_slurm_launcher_config_composes():
    from hydra import compose, initialize_config_dir
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose("generate", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.partition == "gpu"
    assert launcher.tasks_per_node == launcher.gpus_per_node == 8 and launcher.max_num_timeout == 3


def test_wandb_logging_honours_wandb_mode(tmp_path):
    env = {**run_env(), "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"}
    proc = run(tmp_path / "out", "num_images=4", "wandb.enabled=true", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_scores_fid_and_is_with_the_real_inception_code_path(tmp_path):
    """torchrun with 2 processes, then rank 0 scores the folder with torch-fidelity's Inception-v3 (random weights
    in the real layout) against a statistics file."""
    write_random_inception(tmp_path / "weights")
    stats = tmp_path / "ref.npz"
    np.savez(stats, mu=np.zeros(2048), sigma=np.eye(2048))
    proc = run(tmp_path / "out", "metrics.enabled=true", f"metrics.reference={stats}", f"weights.root={tmp_path / 'weights'}",
               launcher=(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "out" / "results.json").read_text())["metrics"]
    assert metrics["extractor"] == "inception-v3-compat" and metrics["fid"] > 0
    assert metrics["is"] >= 1.0 - 1e-9  # IS >= 1, up to rounding (uniform logits of random weights give 1)
    missing = run(tmp_path / "out2", "metrics.enabled=true", f"metrics.reference={tmp_path / 'none.npz'}",
                  f"weights.root={tmp_path / 'weights'}")
    assert missing.returncode == 2 and "statistics" in missing.stderr and "Traceback" not in missing.stderr


def test_a_full_disk_is_one_line_and_the_run_resumes_after(reference, tmp_path):
    """A file-size limit stands in for a full disk (both are OSErrors mid-write): one line, exit 2, no partial
    files, and the same command completes the run once there is room."""
    import resource

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    proc = run(tmp_path, preexec_fn=small_disk)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("error: File too large writing ") and "re-run the same command" in lines[0]
    assert not list(tmp_path.rglob(".*.tmp"))
    proc = run(tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert pngs(tmp_path) == pngs(reference)
