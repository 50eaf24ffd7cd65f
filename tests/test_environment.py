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


def locked_versions() -> dict[str, str]:
    """name -> exact version pinned in requirements.lock (names normalised as pip does)."""
    import re

    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_the_lock_pins_every_requirement_within_its_range_with_hashes():
    """Does requirements.lock (what `make lab` and `make test` install) pin each package that
    pyproject.toml asks for, at a version its range allows, and carry hashes?"""
    import re

    from packaging.requirements import Requirement

    pins = locked_versions()
    problems = []
    for text in sorted(pyproject_requirements()):
        requirement = Requirement(text)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name not in pins:
            problems.append(f"{requirement.name} is not in requirements.lock")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement.name}=={pins[name]} is outside {requirement.specifier}")
    assert not problems, "run `make lock`: " + "; ".join(problems)
    lock = (REPO / "requirements.lock").read_text()
    assert lock.count("==") <= lock.count("--hash=sha256:"), "every pin needs its hashes (make lock)"


def test_the_makefile_installs_from_the_lock():
    """Do `make lab` and `make test` install the locked versions, not the ranges?"""
    makefile = (REPO / "Makefile").read_text()
    assert "-r requirements.lock" in makefile and "--no-deps -e ." in makefile
