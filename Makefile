# The two newcomer commands: `make demo` and `make test`. Both create .venv when it is missing
# and install into it; a second run reinstalls only when a requirements or packaging file changed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.unihema-installed
PYTEST_ARGS ?=

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: help install demo lint test test-experiments clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -r requirements-dev.txt
	$(BIN)/python -m pip install --no-deps --no-build-isolation -e .
	@touch $@

install: $(STAMP)  ## create .venv (if missing) and install unihema with its dependencies

demo: install  ## run the end-to-end demo on the built-in synthetic smears (writes runs/demo/)
	$(BIN)/unihema demo --out runs/demo

lint: install  ## static checks (unused or undefined names, line length)
	$(BIN)/ruff check unihema dataset_adapters tools tests experiments

test: install lint  ## static checks, then the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-experiments: install  ## the tests of the research scripts in experiments/ (not part of make test)
	$(BIN)/python -m pytest experiments/tests $(PYTEST_ARGS)

clean:  ## remove generated runs and caches (keeps .venv)
	rm -rf runs .pytest_cache build *.egg-info
