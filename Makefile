# Two commands do everything: `make run` (every lab, headless) and `make test` (the whole suite).
# Both create the local virtual environment .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.labkit-installed

.PHONY: run rehearse gpu-check test test-fast test-browser lint lab release clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@

run: $(STAMP)  ## run every lab headless on the built-in data, print headline results and wall time
	$(BIN)/labkit run $(LABS)

# every lab's full profile at full shapes, a couple of steps each (labkit run --rehearse; README)
rehearse: $(STAMP)  ## rehearse every lab's full profile on this machine: every cell, a few images
	OMP_NUM_THREADS=2 $(BIN)/labkit run $(LABS) --profile full --rehearse --out build/rehearse

gpu-check: $(STAMP)  ## on one CUDA GPU: rehearsal in bf16 and fp16, HBP 448 benchmark -> results/
	$(BIN)/python benchmarks/gpu_check.py

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# One thread per process: two pytest workers, each with notebook kernels, on two cores. PyTorch's
# default of one thread per core oversubscribes them, and its small smoke-profile operations then
# wait on each other's threads: the suite took 7 min 0 s with it, 4 min 46 s without (RESULTS.md).
test: lint  ## the whole suite: lint, unit tests, release check, every notebook under nbval, browser
	OMP_NUM_THREADS=1 LABKIT_PROFILE=smoke $(BIN)/python -m pytest -n 2 --dist loadfile
	LABKIT_PROFILE=smoke $(BIN)/python -m pytest --browser -p no:xdist -m browser tests/browser

# The loop while editing: the unit tests that execute no notebook and start no kernel, grading
# worker or Python process importing torch (markers `notebook`, `kernel`), each under about 2 s of
# CPU (`slow`): 1 min 52 s with lint on 2 quiet cores (RESULTS.md). `make test` runs them all.
test-fast: lint  ## lint and the fast unit tests: no notebook, kernel, process, slow test or browser
	OMP_NUM_THREADS=1 LABKIT_PROFILE=smoke $(BIN)/python -m pytest -n 2 tests \
		-m "not notebook and not kernel and not slow and not browser"

# JupyterLab refuses to start as root (containers, cloud VMs, course servers) without --allow-root
USER_ID ?= $(shell id -u)
ROOT_FLAG := $(if $(filter 0,$(USER_ID)),--allow-root,)

test-browser: $(STAMP)  ## only the browser suite: JupyterLab in chromium (`apt-get install chromium`)
	LABKIT_PROFILE=smoke $(BIN)/python -m pytest --browser -p no:xdist -m browser tests/browser

lab: $(STAMP)  ## open JupyterLab on the student notebooks (as root too)
	$(BIN)/jupyter lab notebooks/ $(ROOT_FLAG)

release: $(STAMP)  ## regenerate notebooks/ from solutions/
	$(BIN)/labkit release

clean:
	rm -rf build .pytest_cache .ruff_cache
