import json
import os
from pathlib import Path

import pytest
import torch

from gtr.config.schema import register

# Under pytest-xdist each worker gets its share of the cores (torch and the subprocesses it starts): the default, every
# worker using every core, oversubscribes the CPU and slows the suite down.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    _THREADS = max(1, _CORES // _WORKERS)
    torch.set_num_threads(_THREADS)
    os.environ["OMP_NUM_THREADS"] = str(_THREADS)

register()  # the model registry and schemas in Hydra's ConfigStore, for tests that compose through Hydra directly

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent
SCHEMAS = {"mar_b": "mar_base", "mar_l": "mar_large", "mar_h": "mar_huge", "kl16": "kl16_vae"}


def schema(name: str) -> dict:
    return json.loads((DATA / f"{SCHEMAS[name]}_state_dict_schema.json").read_text())


def schema_state_dict(name: str, seed: int) -> dict[str, torch.Tensor]:
    """Random tensors in the exact keys/shapes of an official checkpoint, cheap at any model size: each tensor is
    a random vector along its last dimension broadcast over the others (stride 0), so files stay small."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape, _ in schema(name)["state_dict"]:
        out[key] = (0.02 * torch.randn(shape[-1], generator=g)).expand(*shape)
    return out


def write_mar_checkpoint(path: Path, preset: str) -> tuple[dict, dict]:
    """An official-layout ``checkpoint-last.pth`` with different random ``model`` and ``model_ema``."""
    model, ema = schema_state_dict(preset, 0), schema_state_dict(preset, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "model_ema": ema}, path)
    return model, ema


def one_line_exit(capsys, job, *args) -> str:
    """Call a script's entry point ``job(*args)`` in this process (saves an interpreter start per case): it must exit
    with status 2 and one line on stderr, ``error: ...``, which is returned."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        job(*args)
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert exit_info.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.fixture(autouse=True)
def _grad_mode():
    """A test that turns autograd off must not turn it off for the ones after it."""
    enabled = torch.is_grad_enabled()
    yield
    torch.set_grad_enabled(enabled)


# Variables of the caller's shell that change what the code under test does: each test starts without them (a test
# that needs one sets it), so the suite gives the same result whatever the caller exported (docs/weights.md advises
# GTR_OFFLINE=1 / HF_HUB_OFFLINE=1 offline). GTR_OFFLINE=1 is then set: tests never touch the network.
CALLER_VARIABLES = ("GTR_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HYDRA_FULL_ERROR",
                    "WANDB_MODE", "WANDB_DISABLED")


@pytest.fixture(autouse=True)
def _environment(monkeypatch):
    for variable in CALLER_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("GTR_OFFLINE", "1")


@pytest.fixture
def parity_case():
    return torch.load(DATA / "tiny_mar_parity_cfg_linear.pt", weights_only=True)


def run_env() -> dict:
    """The environment of a subprocess under test: the caller's, without the variables each test starts without."""
    env = {k: v for k, v in os.environ.items() if k not in CALLER_VARIABLES}
    return dict(env, GTR_OFFLINE="1")


def write_random_inception(root: Path) -> Path:
    """torch-fidelity's Inception-v3 with random weights, saved where the resolver looks
    (``<root>/inception/weights-inception-2015-12-05-6726825d.pth``): the real file layout, built without its
    download."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfi
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})
        mp.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        torch.manual_seed(0)
        layout = tfi.FeatureExtractorInceptionV3("x", ["2048"]).state_dict()
    finally:
        mp.undo()
    path = root / "inception" / "weights-inception-2015-12-05-6726825d.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(layout, path)
    return path
