# Two commands set everything up: `make lab` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STUDENT_DIR ?= build/student
LAB_ARGS ?=
# Two pytest workers (one per core); a module's tests stay on one worker.
PYTEST_ARGS ?= -n 2 --dist loadfile
export PATH := $(CURDIR)/$(BIN):$(PATH)
# jupyter refuses to run as root without this flag (containers, CI).
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: lab test release venv hub clean lock mutants

venv: $(VENV)/.installed

# The exact versions of requirements.lock (with hashes), then the project itself: the same
# install in week 1 and week 14. `make lock` refreshes the lock from pyproject.toml's ranges.
$(VENV)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -U pip 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -c 'import course_lib, autograder, nbgrader, jupyterlab, pytest, jupyterhub'
	touch $@

lock: venv
	$(BIN)/python -m pip install -q --disable-pip-version-check pip-tools 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/pip-compile -q --extra test --extra hub --extra cluster --generate-hashes --strip-extras --allow-unsafe \
	  --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

release: venv
	$(BIN)/course release --out $(STUDENT_DIR)

lab: release
	@echo "Starting JupyterLab on 127.0.0.1 with the student version in $(STUDENT_DIR); open the URL it prints."
	$(BIN)/jupyter lab --ip 127.0.0.1 --no-browser $(ROOT_FLAG) --ServerApp.root_dir=$(STUDENT_DIR) $(LAB_ARGS)

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Every mutant of every exercise's reference solution, graded as a class is graded (sandboxed,
# a batch per lesson): writes build/mutants/ and the table in README.md. A benchmark-like job (42 min for
# 567 mutants on 2 shared cores); `make test` grades a fixed sample (tests/mutation/test_mutants.py).
mutants: venv
	$(BIN)/python -m tests.mutation.run --jobs 2 --readme

# A single-host class (needs root): JupyterHub, PostgreSQL, nbgrader's exchange, demo accounts.
HUB_ARGS ?=
hub: venv
	$(BIN)/python -m autograder.hub $(HUB_ARGS)

clean:
	rm -rf build .pytest_cache
