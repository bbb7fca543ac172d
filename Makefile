# One-command entry points. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test test-all bench lint clean install

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

bench: install
	@set -e; ls benchmarks/*.py >/dev/null 2>&1 || { echo "no benchmarks yet"; exit 0; }; \
	mkdir -p benchmarks/results; \
	for b in benchmarks/*.py; do \
	  name=$$(basename $$b .py); echo "== $$name"; \
	  $(PY) $$b | tee benchmarks/results/$$name.json; \
	done

clean:
	rm -rf outputs .pytest_cache
