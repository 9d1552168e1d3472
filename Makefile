# racklab: make demo | make test | make setup
# Every target installs what it needs idempotently, so a fresh machine works.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the lab and its tests use (iproute2 and util-linux are on every machine).
APT_PACKAGES := iproute2 iputils-ping iptables nftables graphviz psmisc procps \
	zookeeper kcat debootstrap fio sysbench iperf3 stress-ng docker.io
# k8s nodes without a cluster: podman kube play (its pause image is built from catatonit;
# runc, since crun refuses hybrid cgroup v1/v2 hosts)
APT_PACKAGES += podman catatonit runc
# `lab images push` is tested against a registry of its own on loopback (Distribution)
APT_PACKAGES += docker-registry
# libvirt-python (a racklab dependency) builds from source against these
APT_PACKAGES += libvirt-dev pkg-config gcc
# the slowest tests listed at the end of every run: the suite must stay under 25 minutes
PYTEST_ARGS ?= --durations=25

.PHONY: setup apt venv docker libvirt test test-all demo lint format clean-labs

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

# Start a Docker engine when none answers (fresh machines have the package but no daemon);
# in its own session, so the end of the shell that started it does not take it along.
docker: apt
	@if ! docker info >/dev/null 2>&1; then \
	  echo "starting dockerd"; \
	  setsid nohup dockerd >/var/log/racklab-dockerd.log 2>&1 < /dev/null & \
	  for i in $$(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done; \
	  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/racklab-dockerd.log"; exit 1; }; \
	fi

# VM nodes: the libvirt daemons and QEMU (libvirt-python itself comes with the venv, built
# against libvirt-dev from APT_PACKAGES). The daemons are started by hand when none
# answers: fresh machines (and containers) have no init system running them.
LIBVIRT_PACKAGES := libvirt-daemon-system qemu-system-x86 qemu-utils
libvirt: setup
	@missing=$$(for p in $(LIBVIRT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@# /dev/kvm as Debian's udev rules leave it (root:kvm 0660). Machines without udev keep
	@# the kernel's root-only node: libvirt then finds its cached QEMU capabilities "with KVM"
	@# invalid for its qemu user and probes QEMU again about ten times per domain start
	@# (44 s before every VM boots, TCG ones too).
	@if [ -c /dev/kvm ] && getent group kvm >/dev/null && [ "$$(stat -c %G:%a /dev/kvm)" != "kvm:660" ]; then \
	  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm; \
	fi
	@if ! virsh -c qemu:///system version >/dev/null 2>&1; then \
	  echo "starting libvirtd"; \
	  pgrep -x virtlogd >/dev/null || virtlogd -d; \
	  libvirtd -d; \
	  for i in $$(seq 1 60); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.5; done; \
	  virsh -c qemu:///system version >/dev/null 2>&1 || { echo "libvirtd did not start"; exit 1; }; \
	fi
	@$(BIN)/python -c "import libvirt" 2>/dev/null || $(BIN)/pip install -q libvirt-python

test: setup docker libvirt
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: setup docker libvirt
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: setup docker libvirt
	$(BIN)/python -m lab demo quickstart

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean-labs: venv
	$(BIN)/lab clean --all
