# Tasks of the course repository. `make help` lists them.
# Every target creates the virtual environment first if it is missing (or pyproject.toml changed).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS ?= 1
# The PyTorch of the course machines (pyproject.toml accepts any torch >= 2.1).
TORCH_PIN := torch==2.13.0
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))

.PHONY: help install book test lint unit browser nbtest lab full times runs student check screenshots bench bench-record clean linkcheck records-lock

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing tme_lib and its dependencies into $(VENV) (a few minutes the first time)"
	$(BIN)/python -m pip install --progress-bar on --upgrade pip
	$(BIN)/python -m pip install --progress-bar on "$(TORCH_PIN)" -e ".[book,dev]"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install tme_lib with the book and dev extras

# --all: a full build takes seconds (nothing is executed), and an incremental one skips edits
# that Sphinx does not track, such as book/_static/custom.css.
book: $(STAMP)  ## build the HTML book into book/_build/html (never retrains)
	$(BIN)/jupyter-book build book --all --warningiserror --nitpick --keep-going

test: lint unit nbtest  ## lint, unit tests (notebook pairs included), every notebook in the smoke profile

lint: $(STAMP)  ## ruff (the linter, and the formatter in check mode, 90 columns); actionlint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/lint_workflows.py

unit: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/browser

linkcheck: $(STAMP)  ## every link of the built book (web links skipped offline; after make book)
	$(BIN)/python tools/check_links.py

records-lock: $(STAMP)  ## after committing records: update the lock of the records archive
	$(BIN)/python tools/records_archive.py lock

browser: $(STAMP)  ## the built book in headless Chromium, at phone and laptop widths (after make book)
	$(BIN)/python -m pytest tests/browser

# A fresh cache for each notebook run: smoke runs retrain in seconds, and no record made by an
# older version of the code can be loaded by mistake.
nbtest: $(STAMP)  ## run every notebook top to bottom in the smoke profile
	cache=$$(mktemp -d) && TME_PROFILE=smoke TME_CACHE_DIR=$$cache $(BIN)/python -m pytest --nbval-lax \
	  -p no:cacheprovider $(NOTEBOOKS); status=$$?; rm -rf $$cache; exit $$status

lab: $(STAMP)  ## open JupyterLab at the root (notebooks/: the chapters; student/notebooks/: yours)
	$(BIN)/jupyter lab

runs: $(STAMP)  ## regenerate every full-profile run record and results table (hours on a CPU)
	TME_PROFILE=full $(BIN)/python -m tme_lib.runs all --jobs $(JOBS)

full: $(STAMP)  ## re-execute the notebooks in the full profile (loads the committed run records)
	$(BIN)/python tools/execute_notebooks.py --profile full --inplace
	$(BIN)/python tools/make_results_page.py

times: $(STAMP)  ## time every notebook in the smoke profile, fresh cache (the intro's cost table)
	$(BIN)/python tools/execute_notebooks.py --profile smoke
	$(BIN)/python tools/make_results_page.py

student: $(STAMP)  ## write the missing student notebooks into student/ (ARGS=--update or --reset)
	$(BIN)/python -m tme_lib.student $(ARGS)

check: $(STAMP)  ## self-check a student notebook: make check NB=student/notebooks/<name>.ipynb
	@test -n "$(NB)" || { echo "Name the notebook: make check NB=student/notebooks/<name>.ipynb"; exit 2; }
	$(BIN)/python -m tme_lib.grade $(NB)

screenshots: $(STAMP)  ## photograph every built page in headless Chromium (book/_build/screenshots)
	$(BIN)/python tools/screenshots.py

bench: $(STAMP)  ## data and training throughput benchmarks
	$(BIN)/python benchmarks/bench_data.py

bench-record: $(STAMP)  ## record the benchmarks the chapters quote (idle machine, clean commit)
	TME_THREADS=1 $(BIN)/python benchmarks/bench_tme10.py --steps 10 --record
	TME_PROFILE=full TME_THREADS=2 $(BIN)/python benchmarks/bench_pretraining.py --record

clean:  ## remove the built book (never the student notebooks)
	rm -rf book/_build
