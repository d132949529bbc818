# The two commands of the README:
#   make demo   runs the main job (an example DAG) against the embedded local MLS server
#   make test   runs the whole suite (lint, types, tests on Airflow 3.3 and on Airflow 2.11)
# Both create or reuse the project virtualenvs and install the pinned lock files themselves.

PYTHON ?= python3
VENV := .venv
VENV_AF2 := .venv-af2
LOCK_AF3 := requirements/airflow-3.3.txt
LOCK_AF2 := requirements/airflow-2.11.txt
VENV_SKTMLS := .venv-sktmls
LOCK_SKTMLS := requirements/sktmls-client.txt
PYTEST_ARGS ?=
# Two pytest workers (pytest-xdist) on the 2-core machine. tests/conftest.py keeps the tests of a module on
# one worker (fixtures are per worker: each has its own local MLS server, AIRFLOW_HOME and ports) unless the
# module is listed there as safe to split; `make test PYTEST_XDIST=` runs in one process.
PYTEST_XDIST ?= -n 2 --dist loadgroup

.PHONY: demo test unit lint docs test-af3 test-af2 e2e-services venv venv-af2 venv-sktmls lock clean bench chaos faults

venv:
	@PYTHON=$(PYTHON) scripts/bootstrap-venv.sh $(VENV) $(LOCK_AF3)

venv-af2:
	@PYTHON=$(PYTHON) scripts/bootstrap-venv.sh $(VENV_AF2) $(LOCK_AF2)

# The reference sktmls client (without its ML stack), for the protocol conformance test.
venv-sktmls:
	@PYTHON=$(PYTHON) NO_PROJECT=1 scripts/bootstrap-venv.sh $(VENV_SKTMLS) $(LOCK_SKTMLS)

# KEEP=1 keeps the working directory (task logs, demo.log, the server's data) after a green run.
KEEP ?=
demo: venv
	$(VENV)/bin/python scripts/demo.py $(if $(filter-out 0 no false,$(KEEP)),--keep)

# Figures of the write invariants (duplicates, stale adoptions, keys lost, typed errors): the hook and
# the operators against mls-local behind the project's chaos proxy, 20 % faults, 2-5 s delays. Twice:
# with the hook's default write_settle (1 s: merges held 2-5 s in flight can lose keys; shown, not
# fatal), then with the connection's write_settle above the delays (its exit code is make's).
chaos: venv
	-$(VENV)/bin/python scripts/chaos.py
	$(VENV)/bin/python scripts/chaos.py --write-settle 6

# Numbers, not assertions: what each operator/sensor module adds to a DAG file's parse beside the http
# provider's sensor module (scripts/bench_parse.py, a minute or two); many deferred waits on one triggerer
# loop, MLSCheckTrigger vs the http provider's HttpSensorTrigger on a stub server (N = 200, 1000, 5000);
# then a real `airflow triggerer` holding 1000 deferred task instances of each (about 12 minutes in all).
# The scripts print their tables and write them to docs/benchmarks.md (with the date, the machine and the
# arguments). Smaller runs:
#   make bench BENCH_ARGS="--n 200 --repeats 1" BENCH_TRIGGERER_N=200
BENCH_ARGS ?=
BENCH_TRIGGERER_N ?= 1000
bench: venv
	$(VENV)/bin/python scripts/bench_parse.py
	$(VENV)/bin/python scripts/bench_triggers.py $(BENCH_ARGS)
	$(VENV)/bin/python scripts/bench_triggerer.py --n $(BENCH_TRIGGERER_N)

# Faults of the Celery + PostgreSQL + Redis deployment (tests/e2e/test_faults.py), figures printed per
# scenario: workers killed mid-task (create, AutoML create, table load, registry upload), the triggerer
# killed holding 200 deferred waits, the scheduler killed, PostgreSQL and Redis restarted, and the cases a
# time window cannot tell apart. `make test` runs the worker-kill and triggerer-kill scenarios only.
faults: venv e2e-services
	MLS_FAULTS=1 $(VENV)/bin/python -m pytest -p no:cacheprovider -s tests/e2e/test_faults.py $(PYTEST_ARGS)

# The fast unit layer alone (tests/unit: each task's own logic with its hook replaced; no server, no
# subprocess, no sleep), in one process: seconds, for the edit-test loop. `make test` runs it too.
unit: venv
	$(VENV)/bin/python -m pytest -n 0 -q tests/unit $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@$(MAKE) --no-print-directory docs

# The docs site (docs/: Markdown through Sphinx and MyST, docs/conf.py) into build/docs/ (git-ignored):
# the HTML from a fresh environment (-E: every page read again, so no warning hides in a cached one) with
# warnings as errors and nitpicky references (a link to a missing page or heading fails), then the link
# check, which fails on any link out of the site: the repository links to nothing outside itself.
DOCS_OUT := build/docs
SPHINX := $(VENV)/bin/python -m sphinx -W --keep-going -n -q -d $(DOCS_OUT)/.doctrees
docs: venv
	$(SPHINX) -E -b html docs $(DOCS_OUT)/html
	$(SPHINX) -b linkcheck docs $(DOCS_OUT)/linkcheck
	@echo "docs: $(DOCS_OUT)/html/index.html"

# PostgreSQL and Redis server binaries for the deployment test (installed with apt-get when root).
e2e-services:
	@scripts/e2e-services.sh

test-af3: venv venv-sktmls e2e-services
	@echo "== tests on Airflow $$($(VENV)/bin/python -c 'import importlib.metadata as m; print(m.version("apache-airflow"))')"
	MLS_SKTMLS_PYTHON=$(CURDIR)/$(VENV_SKTMLS)/bin/python $(VENV)/bin/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

test-af2: venv-af2 venv-sktmls
	@echo "== tests on Airflow $$($(VENV_AF2)/bin/python -c 'import importlib.metadata as m; print(m.version("apache-airflow"))')"
	MLS_SKTMLS_PYTHON=$(CURDIR)/$(VENV_SKTMLS)/bin/python $(VENV_AF2)/bin/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

# lint, then the tests on Airflow 3.3 (with the deployment test) and on Airflow 2.11; one line per stage
# with its wall time (the venv stages install the lock files on a fresh clone, and are no-ops after).
TEST_STAGES := venv venv-af2 venv-sktmls e2e-services lint test-af3 test-af2
test:
	@total=$$(date +%s); \
	for stage in $(TEST_STAGES); do \
	  start=$$(date +%s); \
	  if ! $(MAKE) --no-print-directory $$stage; then \
	    echo "== stage $$stage FAILED after $$(( $$(date +%s) - start ))s"; exit 1; \
	  fi; \
	  echo "== stage $$stage: $$(( $$(date +%s) - start ))s"; \
	done; \
	echo "== make test: all stages passed in $$(( $$(date +%s) - total ))s"

# Re-resolve the pinned lock files (needs the index; commit the result).
lock: venv
	$(VENV)/bin/python -m uv pip compile --quiet --python-version 3.11 --extra test pyproject.toml requirements/airflow-3.3.in -o $(LOCK_AF3) --no-header
	$(VENV)/bin/python -m uv pip compile --quiet --python-version 3.11 --extra test pyproject.toml requirements/airflow-2.11.in -o $(LOCK_AF2) --no-header
	@echo "requirements/sktmls-client.txt: re-resolve requirements/sktmls-client.in the same way and keep its last 'sktmls==' line"

clean:
	rm -rf $(VENV) $(VENV_AF2) $(VENV_SKTMLS) .demo .pytest_cache .mypy_cache .ruff_cache $(DOCS_OUT)
