"""Benchmark of a VM node's boot: power-on to SSH-ready, with the accelerator named.

    python -m lab.bench.vmboot [--runs 5] [--memory 512Mi] [--cpus 1]

Brings up a one-rack lab holding one VM node (the orchestrator's own path: image,
overlay, tap on the rack bridge), then cold-boots that node ``--runs`` times: destroy
the domain, start it, and time

- console ready: power-on until racklab's init prints "ready" on the serial console
  (kernel, initrd, root file system, address, just before sshd starts), and
- SSH ready: power-on until a command (`true`) has run over SSH from the host,
  which is what every racklab command needs.

Each boot is a real one from the same overlay (the first boot in `lab up` is shown
apart: it also made the overlay and the config disk). Figures are medians with their
range; the host-side memory of the running qemu (its cgroup) is shown beside them.
For the ratio, a namespace node of the same lab is restarted and timed the same way
(start until a command has run in it), interleaved with the VM's boots.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

TOPOLOGY = """
name: {name}
racks:
  r1: {{nodes: [vm1, ns1]}}
nodes:
  vm1: {{kind: vm, cpus: {cpus}, memory: {memory}}}
  ns1: {{kind: process, memory: {memory}}}
"""


def fmt(xs: list[float], ms: bool = False) -> str:
    k, unit = (1000, "ms") if ms else (1, "s")
    spread = f"sd {statistics.stdev(xs) * k:.2f}" if len(xs) > 1 else ""
    return (f"{statistics.median(xs) * k:6.2f} {unit}  [{min(xs) * k:.2f} .. {max(xs) * k:.2f}] "
            f"{spread}")  # fmt: skip


def boot_once(node) -> tuple[float, float]:
    """(console ready, SSH ready), both in seconds from power-on."""
    node.kill()
    t0 = time.monotonic()
    node.boot()
    console = time.monotonic() - t0
    node.attach_network()  # the new tap onto the rack bridge, as `start` does
    node.wait_ssh()
    return console, time.monotonic() - t0


def restart_namespace_node(node) -> float:
    """A namespace node's start until a command ran in it, in seconds."""
    node.kill()
    t0 = time.monotonic()
    node.start()
    node.exec(["true"]).check()
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lab.bench.vmboot", description=__doc__.split("\n")[0]
    )
    p.add_argument("--runs", type=int, default=5, help="cold boots to time (default 5)")
    p.add_argument("--memory", default="512Mi")
    p.add_argument("--cpus", default="1")
    a = p.parse_args(argv)
    if a.runs < 1:
        p.error("--runs must be at least 1")

    from lab.backends.base import NodeError
    from lab.images.vm import build_vm_image
    from lab.orchestrator import lab as orch
    from lab.topology import loads

    image = build_vm_image(progress=False).image
    name = f"vmboot{os.getpid()}"
    topo = loads(TOPOLOGY.format(name=name, cpus=a.cpus, memory=a.memory), "vmboot.yaml")
    try:
        state = orch.up(topo)
    except NodeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        node = orch.attach_nodes(state)["vm1"]
        desc = node.describe()
        first_ssh = node.wait_ssh()  # after `lab up`: the tap is on the bridge already
        print(f"# {platform.node()}: {platform.machine()}, host kernel {platform.release()}, "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}")  # fmt: skip
        print(f"# accelerator: {desc['accel'].upper()} ({desc['accel_reason']})")
        print(f"# guest: Debian kernel {image.manifest().get('kernel_version')}, "
              f"{desc['vcpus']} vCPU, {desc['memory_max'] >> 20} MiB, direct kernel boot, "
              f"qcow2 overlay over {image.tag}; {a.runs} cold boots")  # fmt: skip
        print(f"lab up with the VM (first boot, overlay made): {state['up_in']:.2f} s, "
              f"then SSH ready {first_ssh:.2f} s later")  # fmt: skip
        consoles, sshs, namespace = [], [], []
        ns1 = orch.attach_nodes(state)["ns1"]
        for i in range(a.runs):
            c, s = boot_once(node)
            consoles.append(c)
            sshs.append(s)
            namespace.append(restart_namespace_node(ns1))
            print(f"  boot {i + 1}: console ready {c:6.2f} s, SSH ready {s:6.2f} s; "
                  f"namespace node {namespace[-1] * 1000:.0f} ms", flush=True)  # fmt: skip
        rss = node.stats().memory_bytes
        print(f"{'power-on to console ready':<28} {fmt(consoles)}")
        print(f"{'power-on to SSH ready':<28} {fmt(sshs)}")
        print(f"{'namespace node, same way':<28} {fmt(namespace, ms=True)}  "
              f"(VM / namespace: {statistics.median(sshs) / statistics.median(namespace):.0f}x)")  # fmt: skip
        if rss:
            print(f"{'host memory of qemu':<28} {rss / 2**20:6.0f} MiB (its cgroup, after boot)")
    finally:
        orch.down(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
