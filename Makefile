# wsd: set-up, demo, tests, benchmarks, man pages.
#   make setup   .venv/ with torch (CPU build) and wsd installed editable
#   make demo    the whole pipeline on built-in synthetic example data (examples/)
#   make test    the test suite
#   make quality the quality benchmark on real recordings (../shared/data/real)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench quality man clean browser

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned, so the range in pyproject.toml is met without a multi-GB download
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup
	$(MAKE) -C examples WSD=$(CURDIR)/$(BIN)/wsd PYTHON=$(CURDIR)/$(BIN)/python

test: setup browser
	$(BIN)/python -m pytest -q

# Debian's chromium for the report's browser test (skipped with a reason when absent)
browser:
	-@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium not installed: the browser test will be skipped"

bench: setup
	$(BIN)/python benchmarks/slice.py

# learned against unlearned on ../shared/data/real (skips when absent); about an hour
quality: setup
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/quality.py

man: setup
	$(BIN)/python -m wsd.cli.manpage man

clean:
	rm -rf examples/out .pytest_cache
