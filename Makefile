# The two commands of README.md: `make demo` and `make test`.
# Both create .venv when missing and reinstall only when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARCH := $(shell uname -m)
# Known-good pairs that pip finds on this class of machine; any recent torch works elsewhere.
ifeq ($(ARCH),x86_64)
TORCH_PIN := torch==2.14.1 torchvision==0.29.1
else ifeq ($(ARCH),aarch64)
TORCH_PIN := torch==2.9.1 torchvision==0.24.1
else
TORCH_PIN := torch torchvision
endif

.PHONY: demo test test-fast test-slow lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch, torchvision" 2>/dev/null || $(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m landscape.demo

lint: $(STAMP)
	$(BIN)/ruff check landscape models tests benchmarks
	$(BIN)/ruff format --check landscape models tests benchmarks

test: $(STAMP) lint
	$(BIN)/python -m pytest

# The inner loop: every test that starts no child process (tests/README.md), a few minutes.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow and not gpu and not child'

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_surface.py

clean:
	rm -rf $(VENV) build *.egg-info
