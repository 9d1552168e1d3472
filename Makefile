# racklab: make demo | make test | make setup
# Every target installs what it needs idempotently, so a fresh machine works.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the lab and its tests use (iproute2 and util-linux are on every machine).
APT_PACKAGES := iproute2 iputils-ping iptables nftables graphviz psmisc procps \
	zookeeper kcat debootstrap fio sysbench iperf3 stress-ng docker.io
PYTEST_ARGS ?=

.PHONY: setup apt venv docker test test-all demo lint format clean-labs

setup: apt venv

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[test]"
	touch $@

venv: $(VENV)/.installed

# Start a Docker engine when none answers (fresh machines have the package but no daemon).
docker: apt
	@if ! docker info >/dev/null 2>&1; then \
	  echo "starting dockerd"; \
	  (nohup dockerd >/var/log/racklab-dockerd.log 2>&1 &); \
	  for i in $$(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done; \
	  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/racklab-dockerd.log"; exit 1; }; \
	fi

test: setup docker
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: setup docker
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: setup docker
	$(BIN)/python -m lab demo quickstart

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean-labs: venv
	$(BIN)/lab clean --all
