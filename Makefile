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

# The demo: generator-level templates (elastic mu e events with the MUonE 2D binning and the four
# systematic variations), then the Delta_alpha_had template fit in sensitivity mode at MUonE's full
# luminosity: prints a_mu^HLO with its statistical uncertainty and writes the fit plots.
demo: $(STAMP)
	$(BIN)/muone run steering/templates.toml --set job.events=1000000 --output out/demo/templates --force
	$(BIN)/muone run steering/fit.toml --set 'job.inputs={mc = "out/demo/templates"}' --output out/demo/fit --force

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf out .pytest_cache
