"""Fixtures for the VM tests: a libvirt daemon that answers, racklab's VM image (built
once and cached across sessions), and unique lab names so concurrent runs never meet.

VMs are costly here (QEMU emulates the CPU when KVM cannot boot a stock kernel), so
the default suite boots one VM for the whole module; more boots are marked slow."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest


@pytest.fixture(scope="session")
def libvirt_conn():
    if os.geteuid() != 0:
        pytest.skip("VM tests need root (libvirt's system daemon, taps, namespaces)")
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("QEMU is not installed; `make libvirt` installs it")
    from lab.backends.vm import VMError, connect

    try:
        return connect()
    except VMError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def vm_image(libvirt_conn):
    from lab.images.vm import build_vm_image

    return build_vm_image(progress=False).image


@pytest.fixture
def lab_name():
    return "t8" + uuid.uuid4().hex[:8]


def domains_of(conn, lab: str) -> list[str]:
    return [d.name() for d in conn.listAllDomains(0) if d.name().startswith(f"racklab-{lab}-")]
