# Every target sets up .venv itself, so the first command on a fresh machine just works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: run test bench lab clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: set up .venv and run the G4 gate on this repository; exits non-zero only on exit 2
run: $(STAMP)
	@$(BIN)/tinysdlc-nb gate g4 --project . ; code=$$?; \
	if [ $$code -eq 2 ]; then echo "make run: the gate run itself failed (exit 2)" >&2; exit 2; fi

## test: set up .venv and run the test suite, one worker per core (a test file stays on one)
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile

## bench: run the benchmarks under bench/ and print their ratios
bench: $(STAMP)
	$(BIN)/python bench/run.py

## lab: open JupyterLab on the notebooks, in the same environment
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $$([ "$$(id -u)" -eq 0 ] && echo --allow-root)

clean:
	rm -rf $(VENV) build *.egg-info
