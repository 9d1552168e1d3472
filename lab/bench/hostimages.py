"""``lab bench hostimages FILE``: what sending racklab's images to a host costs.

On FILE's first host (a real spare machine, or one ``lab hosts simulate`` made), each
run, in this order:

1. racklab's node images removed from the host's Docker engine, then the node image
   sent whole (``docker save`` here into ``docker load`` there, lab/hosts/images.py);
2. an image with one small layer more (what a new racklab version is to a host: the
   same base and dependency layers, a new top) sent twice, removed from the host in
   between: only the layers the host lacks (lab/hosts/layers.py); the two sends of the
   same thing are the A/A pair, their difference the noise of the measurement;
3. the same image once more: nothing to send (the reuse check alone);
4. the VM images sent to the host removed, then racklab's VM image sent (its base and
   racklab's disk, lab/hosts/vmimages.py), then sent again (reused).

Seconds are wall time from this machine, bytes what crossed the SSH connection.
"""

from __future__ import annotations

import io
import os
import platform
import statistics
import tarfile


def derived_image(base: str, tag: str, marker: bytes):
    """An image ``tag`` made of ``base`` plus one layer holding /racklab-marker (built
    here; no container runs)."""
    from lab.images.build import docker_client

    ctx = io.BytesIO()
    with tarfile.open(fileobj=ctx, mode="w") as tar:
        for name, data in (("Dockerfile", f"FROM {base}\nCOPY marker /racklab-marker\n".encode()),
                           ("marker", marker)):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    ctx.seek(0)
    image, _ = docker_client().images.build(fileobj=ctx, custom_context=True, tag=tag, rm=True)
    return image


def _one(host, tag: str, image_id: str, newer, newer_tag: str, agent_tag: str) -> dict:
    from lab.hosts import images, vmimages
    from lab.images import NODE_LATEST

    # nothing of either image left in the host's engine: no image holds their layers
    host.run(["docker", "image", "rm", newer_tag])
    images.remove(host)
    whole = images.send(host, tag, image_id)
    tops = []
    for _ in range(2):
        # the newer image gone again, layer and all (send made it the host's latest)
        host.run(["docker", "tag", tag, NODE_LATEST])
        host.run(["docker", "image", "rm", newer_tag])
        tops.append(images.send(host, newer_tag, newer.id))
    reuse = images.send(host, newer_tag, newer.id)
    vmimages.remove(host)
    vm = vmimages.local_vm_image()
    vm_first = vmimages.send(host, vm, agent_tag)
    vm_again = vmimages.send(host, vm, agent_tag)
    return {
        "node_whole": {"s": round(whole.seconds, 2), "bytes": whole.sent_bytes},
        "node_top": [
            {"s": round(t.seconds, 2), "bytes": t.sent_bytes, "left_out": t.left_out} for t in tops
        ],  # fmt: skip
        "node_reuse_s": round(reuse.seconds, 2),
        "vm_first": {"s": round(vm_first.seconds, 2), "bytes": vm_first.sent_bytes},
        "vm_reuse_s": round(vm_again.seconds, 2),
    }


def run(topo, runs: int = 3, progress=lambda msg: None) -> dict:
    from lab.hosts import agent, images
    from lab.hosts.ssh import connect
    from lab.images import NODE_LATEST
    from lab.images.build import docker_client

    spec = next(iter(topo.hosts.values()))
    tag, image_id = images.local_node_image(progress)
    # not in racklab/node: a node image build here prunes that repository's other tags
    newer_tag = f"racklab/bench-node:{os.getpid()}"
    newer = derived_image(tag, newer_tag, f"bench {os.getpid()}\n".encode())
    host = connect(spec)
    try:
        tags = agent.installed_tags(host)
        if not tags:
            raise RuntimeError(f"host {spec.name} has no racklab agent: `lab hosts install` first")
        out = []
        for i in range(runs):
            progress(f"run {i + 1} of {runs} on host {spec.name}")
            out.append(_one(host, tag, image_id, newer, newer_tag, tags[0]))
    finally:
        host.run(["docker", "tag", tag, NODE_LATEST])
        host.run(["docker", "image", "rm", newer_tag])
        host.close()
        docker_client().images.remove(newer_tag)
    return {
        "machine": f"{platform.node()} {platform.machine()}, kernel {platform.release()}",
        "host": spec.name,
        "load": [round(x, 2) for x in os.getloadavg()],
        "runs": out,
    }


def table(r: dict) -> str:
    runs = r["runs"]

    def spread(values) -> str:
        return f"{statistics.median(values):.2f} s [{min(values):.2f}..{max(values):.2f}]"

    def mib(n: int) -> str:
        return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"

    top = [t for x in runs for t in x["node_top"]]
    aa = [abs(x["node_top"][0]["s"] - x["node_top"][1]["s"]) for x in runs]
    rows = [
        ("node image, whole", spread([x["node_whole"]["s"] for x in runs]),
         mib(runs[0]["node_whole"]["bytes"])),
        (f"node image, one new layer ({top[0]['left_out']} layers left out)",
         spread([t["s"] for t in top]), mib(top[0]["bytes"])),
        ("node image, the host has it", spread([x["node_reuse_s"] for x in runs]), "0"),
        ("VM image, first", spread([x["vm_first"]["s"] for x in runs]),
         mib(runs[0]["vm_first"]["bytes"])),
        ("VM image, the host has it", spread([x["vm_reuse_s"] for x in runs]), "0"),
    ]  # fmt: skip
    lines = [
        f"host {r['host']}; {r['machine']}; load {r['load']}; {len(runs)} runs",
        "",
        "| sent | time, median [min..max] | bytes |",
        "| --- | --- | --- |",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
        f"A/A (the one-layer send twice per run): differences {', '.join(f'{d:.2f}' for d in aa)} s",
    ]
    return "\n".join(lines)
