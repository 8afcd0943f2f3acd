# The README's two set-up commands: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: demo test test-tools lint clean gpu-check otter-check

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e '.[test]' $(TORCH_PIN)
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/autograder demo

# Two test processes (pytest-xdist; a test file stays in one): most tests wait on subprocesses, kernels and
# workers, so two of them keep a 2-core machine busy. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
test: $(STAMP) test-tools
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# What the suite needs beyond Python: Debian's chromium (the class report is tested in a real browser) and
# bubblewrap (the walls' bubblewrap layer). Installed where this user may (root, or sudo without a password);
# otherwise the one command that does it is printed and the suite stops before it starts.
test-tools:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else \
	    echo "make test needs:$$missing. Install them with: sudo apt-get install -y$$missing"; exit 1; fi; \
	  $$sudo apt-get install -y -qq $$missing >/dev/null 2>&1 \
	    || { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq $$missing >/dev/null; }; \
	fi

# On a machine with an NVIDIA GPU: the CUDA tests, the scale tests and the demo on CUDA. On a GPU machine with
# its own torch and no venv (see ../shared/device/README.md): make gpu-check PYTHON=python3 AUTOGRADER="python3 -m autograder"
PYTHON ?= $(PY)
AUTOGRADER ?= $(VENV)/bin/autograder
gpu-check:
	$(PYTHON) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu-check: CUDA is not available here')"
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_scale.py
	$(AUTOGRADER) demo --device cpu
	$(AUTOGRADER) demo --device cuda
	$(PYTHON) -m bench.devices --devices cpu cuda

# `otter grade` (Docker) against `autograder grade`: every built-in's examples and an assignment made with
# `autograder new`, per-exercise scores compared and seconds per submission printed (bench/otter_grade.py). Needs a
# Docker daemon (.ci/start-dockerd starts one as root); the base image is built on first use (about 5 minutes,
# autograder.otterkit.image) and kept.
otter-check: $(STAMP)
	@bash .ci/start-dockerd
	$(PY) -m pytest -m "docker or not docker" -p no:cacheprovider -rA tests/test_otter_image.py

lint: $(STAMP)
	$(VENV)/bin/ruff check autograder tests reference_solutions assignments bench
	$(VENV)/bin/mypy autograder

clean:
	rm -rf $(VENV) results dist build .pytest_cache
