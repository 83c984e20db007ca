import re
import tomllib

from conftest import REPO


def test_environment_yml_mirrors_pyproject_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    conda = set(re.findall(r"^\s+- (\S+==\S+)$", (REPO / "environment.yml").read_text(), flags=re.M))
    assert conda == pins


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert len(ci) == 1 and ci[0] in readme


def test_no_top_level_shadowing_packages():
    """Only the ``gtr`` package is installed: no top-level ``models`` or ``tokenizers`` to shadow others."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["gtr*"]
    assert not (REPO / "models" / "__init__.py").exists() and not (REPO / "tokenizers" / "__init__.py").exists()
