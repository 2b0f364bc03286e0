# PoseReel: every target installs what it needs, and is safe to run twice.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= $(abspath ../shared)
MEDIAPIPE_VERSION := 1.2.2
DEMO_CLIP ?= $(SHARED)/media/hybrik_taiji.mp4
OUT ?= out

# Models are read from ../shared/models when it is there (no download needed); elsewhere run
# `posereel models fetch` once, which fills ~/.cache/posereel/models.
ifneq ($(wildcard $(SHARED)/models/pose_landmarker_lite.task),)
export POSEREEL_MODEL_DIR ?= $(SHARED)/models
endif
export GLOG_minloglevel ?= 2
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

APT_PACKAGES := ffmpeg

.PHONY: help setup system-deps demo test test-unit lint format bench clean

help:
	@echo "make demo   analyse a real clip end to end, results in $(OUT)/demo"
	@echo "make test   lint and run every test"
	@echo "make bench  speed and memory of the engine against a naive baseline"

system-deps:
	@missing=""; for bin in ffmpeg ffprobe; do command -v $$bin >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $(APT_PACKAGES)"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

# mediapipe goes in with --no-deps: it declares opencv-contrib-python (a GUI build wanting libGL)
# and sounddevice; its other dependencies are listed in pyproject's `worker` extra, next to
# opencv-python-headless, so exactly one package owns `cv2`.
$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-deps mediapipe==$(MEDIAPIPE_VERSION)
	$(PY) -m pip install -q -e '.[worker,dev]'
	$(PY) -c "import importlib.metadata as md, cv2, mediapipe, posereel; \
	  owners = {d.metadata['Name'] for d in md.distributions() if d.metadata['Name'].startswith('opencv')}; \
	  assert owners == {'opencv-python-headless'}, f'cv2 must come from opencv-python-headless only: {owners}'"
	touch $@

setup: system-deps $(VENV)/.installed

demo: setup
	$(VENV)/bin/posereel analyze $(DEMO_CLIP) --out $(OUT)/demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup lint
	$(PY) -m pytest -q

test-unit: setup
	$(PY) -m pytest -q tests/unit -m "not media"

bench: setup
	$(PY) tests/bench/bench_engine.py --media $(SHARED)/media --out $(OUT)/bench

clean:
	rm -rf $(OUT) .pytest_cache .ruff_cache .mypy_cache
