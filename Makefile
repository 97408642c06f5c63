# Two commands set up a fresh machine: `make run` (install + start the app) and `make test`
# (install + the whole suite). Installs are skipped when the requirement files have not changed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
API_PORT ?= 8000
API_HOST ?= 127.0.0.1
SERVE_PORT ?= 8000
DATA_DIR ?= ../shared/data
PYTEST_ARGS ?=
# make bench BENCH_SCALING=skip: keep the recommender cost curve on file (measure: redo it; reuse:
# redo it only when the code it measures changed). `make bench-scaling` measures it alone.
BENCH_SCALING ?= reuse

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: run api serve serve-stop loadtest loadtest-ui screenshots system-deps-train test test-fast lint install install-dev system-deps system-deps-test train evaluate bench bench-scaling clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# A fresh environment takes about 7 GB (torch's CUDA build alone about 5.5 GB). Say so up front rather
# than leave pip to stop half-way with "No space left on device"; a warning, since pip may reuse files.
INSTALL_NEEDS_GB ?= 8
define disk_check
	@free_gb=$$(df -Pk $(VENV) | awk 'NR==2 {print int($$4 / 1048576)}'); \
	if [ "$$free_gb" -lt $(INSTALL_NEEDS_GB) ]; then \
	  echo "warning: $$free_gb GB free for $(VENV); a fresh install needs about $(INSTALL_NEEDS_GB) GB" >&2; fi
endef

$(VENV)/.installed-runtime: requirements.txt | $(PY)
	$(call disk_check)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt requirements-serve.txt | $(PY)
	$(call disk_check)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt -r requirements-serve.txt
	touch $@ $(VENV)/.installed-runtime $(VENV)/.installed-serve

# Ray Serve (serve/ray_app.py): `make serve` and `make test` install it, `make run` does not.
$(VENV)/.installed-serve: requirements.txt requirements-serve.txt | $(PY)
	$(call disk_check)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-serve.txt
	touch $@ $(VENV)/.installed-runtime

install: $(VENV)/.installed-runtime
install-dev: $(VENV)/.installed-dev

# Debian packages: ffmpeg decodes M4A/AAC uploads; chromium runs the browser tests.
# Installed with apt-get when missing and we are root; otherwise we say what to install.
define apt_ensure
	@missing=""; for cmd in $(1); do command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$cmd"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "apt-get install:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: please install$$missing with your package manager (optional features are disabled without them)"; fi; \
	fi
endef

system-deps:
	$(call apt_ensure,ffmpeg)

system-deps-test:
	$(call apt_ensure,ffmpeg chromium espeak-ng)

run: install system-deps
	$(PY) -m pages.ui.launch --server.port $(PORT)

# The REST API over the same services (OpenAPI at /docs); API_PRELOAD=1 loads every model at startup.
api: install system-deps
	$(PY) -m uvicorn serve.api:app --host $(API_HOST) --port $(API_PORT)

test: install-dev system-deps-test
	$(PY) -m pytest $(PYTEST_ARGS)

# Retakes the pictures: docs/screenshots/after (the UI walkthrough) and the README's .github/screenshots,
# which the browser tests only write there under SCREENSHOTS=1 (a plain `make test` leaves them alone).
README_SCREENSHOT_TESTS = tests/e2e/test_home_e2e.py tests/e2e/test_recommend_e2e.py \
	tests/e2e/test_speech_phone_e2e.py tests/e2e/test_vision_phone_e2e.py
screenshots: install-dev system-deps-test
	SCREENSHOTS=1 $(PY) -m pytest tests/e2e/test_screenshots_e2e.py $(README_SCREENSHOT_TESTS)

test-fast: install-dev
	$(PY) -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

lint: install-dev
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

# Rebuild every shipped model from the real datasets (see README for times on a 2-core CPU).
# espeak-ng synthesises the extra voices the speech training uses.
system-deps-train:
	$(call apt_ensure,espeak-ng)

train: install system-deps-train
	$(PY) -m models train all --data-dir $(DATA_DIR)  # every task of services/tasks.py

evaluate: install
	$(PY) -m models evaluate all --data-dir $(DATA_DIR)
	$(PY) -m models readme

# Latency, throughput, comparisons and cold start, in one run (writes bench/results.*, README table).
bench: install-dev system-deps-test
	$(PY) -m bench --data-dir $(DATA_DIR)/movielens-100k --scaling $(BENCH_SCALING)

# The recommender's cost curve alone: ALS, PureSVD and Surprise's SVD at 100 K, 1 M and 10 M synthetic
# ratings, one process per point, date and load average beside each (bench/recommend_scaling.json,
# results.json, the README's tables). Run it on a quiet machine: it takes about half an hour.
bench-scaling: install-dev
	$(PY) -m bench.recommend_scaling

# The same API on Ray Serve: starts a local Ray head unless RAY_ADDRESS names a cluster, deploys
# serve/config.yaml with HTTP on SERVE_PORT, returns once every deployment is healthy.
serve: install system-deps $(VENV)/.installed-serve
	$(PY) -m serve.cluster up --port $(SERVE_PORT)

serve-stop: $(VENV)/.installed-serve
	$(PY) -m serve.cluster down

# Closed-loop load on the in-process API and on Ray Serve (1 and 2 replicas per task), at 1/8/32/64
# clients (writes bench/load.json and prints the table).
loadtest: install-dev system-deps
	$(PY) -m bench.load

# A room full of users: 1, 4 and 8 Chromium sessions at once on the app (writes bench/load_ui.json).
loadtest-ui: install-dev system-deps-test
	$(PY) -m bench.load_ui

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
