# One-command entry points. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test test-all lint bench ablation clean install

install: $(VENV)/.installed

# Re-install when the dependency list changes; the stamp keeps `make test` fast otherwise.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c .ci/constraints.txt -e ".[dev]"
	touch $@

demo: install
	$(PY) recipes/demo.py

# Default suite (fast tests; `slow` ones are deselected in pyproject). pytest exits 5 when it
# collected nothing, which fails this target like any other error.
test: install
	$(PY) -m pytest

test-all: install
	$(PY) -m pytest -m "slow or not slow"

lint: install
	$(PY) -m ruff check mcja_hub recipes benchmarks tests

# Each benchmark prints one JSON object, kept in benchmarks/results/ (numbers in the README).
BENCHMARKS := augment data evaluation rerank_memory train_step
bench: install
	@mkdir -p benchmarks/results
	@set -e; for name in $(BENCHMARKS); do \
	  echo "== $$name"; $(PY) benchmarks/$$name.py | tee benchmarks/results/$$name.json; \
	done

# 4 variants x $(seeds) seeds of the synthetic recipe at $(epochs) epochs (lr x0.1 at $(milestones)), $(jobs)
# runs at a time. Finished runs are kept under benchmarks/results/ablation-runs/ and skipped by the next call,
# so an interrupted table continues where it stopped. The full schedule is ~13 minutes a run on the 2-core VM
# (~9.5 with jobs=2).
epochs ?= 24
milestones ?= [18]
seeds ?= 5
jobs ?= 1
ablation: install
	@mkdir -p benchmarks/results
	$(PY) benchmarks/ablation.py --seeds $(seeds) --jobs $(jobs) optim.epochs=$(epochs) "optim.milestones=$(milestones)" \
  | tee benchmarks/results/ablation.json

clean:
	rm -rf outputs .pytest_cache
