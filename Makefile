# Two entry points that work on a fresh machine with Python >= 3.11 and make:
#   make demo   runs the main demo job end to end
#   make test   runs the test suite
# Both create and fill .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dask,docs]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/muone run steering/demo.toml --force

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf out .pytest_cache
