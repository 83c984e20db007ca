import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

from conftest import REPO


def constraints() -> dict[str, str]:
    lines = (REPO / "constraints.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


def test_environment_yml_mirrors_the_constraints():
    conda = set(re.findall(r"^\s+- (\S+==\S+)$", (REPO / "environment.yml").read_text(), flags=re.M))
    assert conda == {f"{name}=={version}" for name, version in constraints().items()}


def test_every_dependency_has_a_pin_inside_its_range():
    """pyproject.toml holds ranges, constraints.txt the tested versions: every requirement of the core and of the
    extras is pinned there, and each pin satisfies its range."""
    from packaging.requirements import Requirement
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    requirements += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    pins = constraints()
    for req in requirements:
        if req.name == project["name"]:  # gtr-mar[...]: the extras themselves
            assert req.extras <= set(project["optional-dependencies"])
            continue
        assert req.name in pins, f"{req.name} has no pin in constraints.txt"
        assert req.specifier.contains(pins[req.name]), f"{req.name}=={pins[req.name]} outside {req.specifier}"
    assert all("==" not in r for r in project["dependencies"])  # ranges, not pins
    assert set(project["optional-dependencies"]) >= {"eval", "t2i", "track", "slurm", "plots", "all", "test"}


OPTIONAL = ["torch_fidelity", "transformers", "wandb", "submitit", "hydra_plugins.hydra_submitit_launcher",
            "matplotlib"]
BLOCK = "import sys; [sys.modules.__setitem__(m, None) for m in {!r}]; sys.argv = ['gtr-x', *sys.argv[1:]]; "


def test_the_core_install_runs_the_default_job_without_any_extra(tmp_path):
    """The sample job (README command 1) imports nothing from the extras."""
    code = BLOCK.format(OPTIONAL) + "from gtr.cli import sample; sample()"
    done = subprocess.run([sys.executable, "-c", code, "images_per_class=1", f"output_dir={tmp_path}/out"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "grid.png").exists()


def test_a_missing_extra_is_one_line_naming_it(tmp_path):
    code = BLOCK.format(["torch_fidelity"]) + "from gtr.cli import generate; generate()"
    done = subprocess.run([sys.executable, "-c", code, "model=mar_fmnist", f"output_dir={tmp_path}/out"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: torch_fidelity is not installed: pip install 'gtr-mar[eval]' (in a clone: pip install -e '.[eval]' "
        "-c constraints.txt)"]


def test_the_wheel_runs_the_default_job_outside_a_clone(tmp_path):
    """Build the wheel, install it apart from the clone, and run its ``gtr-sample`` entry point from another folder:
    the configs and the embedded models travel inside the package."""
    source, wheels, site, work = tmp_path / "src", tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    # What the build reads, copied so that no build/ folder of the clone's can leak stale files into the wheel.
    shutil.copytree(REPO / "gtr", source / "gtr", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)], check=True,
                   capture_output=True, timeout=600)
    (wheel,) = wheels.glob("gtr_mar-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "gtr/configs/sample.yaml" in names and "gtr/configs/sampler/gtr_16.yaml" in names
    assert any(n.startswith("gtr/assets/") and n.endswith(".safetensors") for n in names)
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "gtr-sample = gtr.cli:sample" in entry_points
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True,
                   timeout=600)
    env = {**os.environ, "PYTHONPATH": str(site)}  # ahead of the clone's editable install
    done = subprocess.run([str(site / "bin" / "gtr-sample"), "images_per_class=1", "output_dir=out"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (work / "out" / "grid.png").exists() and (work / "out" / "config.yaml").exists()
    where = subprocess.run([sys.executable, "-c", "import gtr; print(gtr.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site))


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert len(ci) == 1 and ci[0] in readme


def test_no_top_level_shadowing_packages():
    """Only the ``gtr`` package is installed: no top-level ``models`` or ``tokenizers`` to shadow others."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["gtr*"]
    assert not (REPO / "models" / "__init__.py").exists() and not (REPO / "tokenizers" / "__init__.py").exists()
