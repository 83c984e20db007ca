"""Every command of the documentation's shell blocks (README.md and docs/*.md) is valid as written: each script
exists, each Hydra command line composes and passes the jobs' checks (models, samplers, keys, values, sweeps), and the
commands that need no weights, GPU or hours run."""
import shlex
import subprocess
import sys

import pytest

from conftest import REPO, run_env
from gtr.config import preflight

HYDRA_JOBS = {"sample", "sample_t2i", "generate", "geneval", "train"}
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]  # the README, then every docs/ page


def readme_commands() -> list[str]:
    """The ``python scripts/...`` and ``torchrun ... scripts/...`` commands of the bash blocks of the README and of
    every docs/*.md page, comments dropped and continuation lines joined."""
    commands, inside, pending = [], False, ""
    lines = [line for document in DOCUMENTS for line in document.read_text().splitlines()]
    for line in lines:
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        if not inside:
            continue
        code = line.split("  #")[0].rstrip() if not line.lstrip().startswith("#") else ""
        pending += code
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        for part in pending.split("&&"):
            part = part.strip()
            if "scripts/" in part and (part.startswith("python ") or part.startswith("torchrun ")):
                commands.append(part)
        pending = ""
    return commands


COMMANDS = readme_commands()


def test_the_readme_has_commands():
    assert len(COMMANDS) > 40 and "python scripts/sample.py" in COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_is_valid_as_written(command, capsys):
    argv = shlex.split(command)
    script = next(a for a in argv if a.startswith("scripts/"))
    assert (REPO / script).is_file(), f"{script} does not exist"
    name = script.removeprefix("scripts/").removesuffix(".py")
    if name not in HYDRA_JOBS:
        return  # argparse scripts: their own parsers check them when run
    args = argv[argv.index(script) + 1:]
    if any("<" in a or a == "..." for a in args):
        pytest.skip("a placeholder for the reader to fill in")
    try:
        preflight(name, args)  # composes every combination of a sweep as Hydra would, with the jobs' checks
    except SystemExit as stop:
        pytest.fail(f"`{command}` is refused: {capsys.readouterr().err.strip()} (exit {stop.code})")


@pytest.mark.parametrize("command", [
    "python scripts/sample.py",
    'python scripts/sample_t2i.py model=lightgen_tiny prompt="two dogs"',
])
def test_readme_commands_that_need_no_weights_run(command, tmp_path):
    assert command in COMMANDS
    argv = shlex.split(command)
    argv[1] = str(REPO / argv[1])  # run from a scratch folder: outputs land there, not in the clone
    proc = subprocess.run([sys.executable, *argv[1:], "progress=false"], cwd=tmp_path, capture_output=True, text=True,
                          env=run_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(tmp_path.rglob("grid.png"))
