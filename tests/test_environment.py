"""Do the conda environment and the pip metadata ask for the same packages?"""

import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def pyproject_requirements() -> set[str]:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = set(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values():
        reqs.update(extra)
    return reqs


def environment_requirements() -> set[str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {r for r in pip if not r.startswith("-e")}


def test_environment_yml_lists_the_same_requirements_as_pyproject():
    """Would a conda user get the same packages as `make lab` installs?"""
    only_pyproject = pyproject_requirements() - environment_requirements()
    only_conda = environment_requirements() - pyproject_requirements()
    assert not only_pyproject and not only_conda, (
        f"environment.yml and pyproject.toml differ: missing in environment.yml {sorted(only_pyproject)}, "
        f"not in pyproject.toml {sorted(only_conda)}"
    )


def test_environment_yml_installs_the_project_itself():
    """Does the conda environment install course_lib and the course command?"""
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-e ." in pip
