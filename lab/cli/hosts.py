"""lab hosts: the machines a lab spreads over, and simulated ones to try it on one."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from lab.cli.common import JSON, UserError, _emit, _need_root, _progress, app, bench_app, out

hosts_app = typer.Typer(no_args_is_help=True, help="Hosts a lab spreads over (SSH).")
app.add_typer(hosts_app, name="hosts")


@hosts_app.command("simulate")
def hosts_simulate(
    count: int = typer.Argument(None, help="How many hosts to make."),
    name: str = typer.Option(
        "sim", "--name", help="The set's name; its hosts are NAME1, NAME2, ..."
    ),
    remove: bool = typer.Option(False, "--remove", help="Remove the set NAME instead."),
    as_json: bool = JSON,
):
    """Make COUNT local hosts (own namespaces, own Debian root filesystem, real sshd) and
    print the hosts section to paste into a topology file.

    \b
    Example:
      lab hosts simulate 3 --name try
      lab hosts simulate --remove --name try
    """
    from lab.hosts import simulate

    _need_root()
    try:
        if remove:
            if count is not None:
                raise UserError("give either a number of hosts to make or --remove, not both")
            if not simulate.exists(name):
                raise UserError(f"no simulated hosts named {name!r} on this machine")
            removed = simulate.remove(name)
            if not _emit({"removed": removed}, as_json):
                for r in removed:
                    out.print(f"removed {r}")
            return
        if count is None:
            raise UserError("say how many hosts to simulate (lab hosts simulate 3)")
        data = simulate.simulate(count, name, progress=_progress(as_json))
    except simulate.SimulateError as e:
        raise UserError(str(e)) from None
    if not _emit(data, as_json):
        out.print(simulate.hosts_section(data), end="", highlight=False, soft_wrap=True)


def _hosts_of(file: Path):
    from lab.topology import load

    topo = load(file)
    if not topo.hosts:
        raise UserError(f"{file} has no hosts section: its lab runs on this machine")
    return topo


@contextlib.contextmanager
def _one_sentence():
    """A host racklab cannot use is a user's problem to fix: one sentence, exit 2."""
    from lab.hosts.ssh import HostError

    try:
        yield
    except HostError as e:
        raise UserError(str(e)) from None


@hosts_app.command("trust")
def hosts_trust(file: Path, as_json: bool = JSON):
    """Record the SSH host key of every host in FILE in its known_hosts (printing each
    fingerprint to compare); a key that differs from the recorded one is refused.

    \b
    Example:
      lab hosts trust examples/multihost.yaml
    """
    from lab.hosts.trust import trust

    topo = _hosts_of(file)
    with _one_sentence():
        done = [trust(h) for h in topo.hosts.values()]
    if not _emit([t.as_dict() for t in done], as_json):
        for t in done:
            out.print(f"{t.host}: {t.key_type} {t.fingerprint} {t.status} in {t.known_hosts}")


@hosts_app.command("check")
def hosts_check(file: Path, as_json: bool = JSON):
    """Check every host in FILE as `lab up` does first, and what its node kinds need
    there (Docker's engine, libvirt) as `lab up` does, through an agent already on the
    host; changes nothing anywhere.

    \b
    Example:
      lab hosts check examples/multihost.yaml
    """
    from lab.hosts import machinery, preflight
    from lab.hosts.agent import agent_python, installed_tags
    from lab.hosts.client import agent
    from lab.hosts.ssh import Hosts, each

    topo = _hosts_of(file)
    kinds = machinery.kinds_on(topo)

    def kinds_there(h) -> dict | None:
        # an agent of any version answers for the machinery: none there, none asked
        tags = installed_tags(h)
        if not tags:
            return None
        return machinery.check(h, agent(h.spec, agent_python(tags[0]), h), kinds[h.name])

    with _one_sentence(), Hosts(topo.hosts.values()) as hosts:
        facts = preflight.check(list(hosts), topo.labid)
        found = each(hosts, kinds_there)
    result = {n: {**f.as_dict(), "kinds": found[n]} for n, f in facts.items()}
    if not _emit(result, as_json):
        port = preflight.vxlan_port(topo.labid)
        for f in facts.values():
            out.print(
                f"{f.host}: ok ({f.user} via {f.root}, Python {f.python}, cgroup {f.cgroup}, "
                f"kernel {f.kernel}, clock {f.skew:+.3f} s, ssh round trip {f.rtt_ms} ms)"
            )
            if found[f.host] is None:
                out.print(f"{f.host}: its node kinds not checked: no racklab agent there yet "
                          f"(`lab hosts install {file}` installs it and checks them)")  # fmt: skip
            else:
                for kind, kf in found[f.host].items():
                    said = ", ".join(f"{k} {v}" for k, v in kf.items() if v) or "ready"
                    out.print(f"{f.host}: {kind} nodes ok ({said})")
        if len(facts) > 1:
            out.print(f"UDP {port} (the lab's VXLAN port) open between every pair of hosts")


@hosts_app.command("install")
def hosts_install(file: Path, as_json: bool = JSON):
    """Check every host in FILE, install the racklab agent on each (reused when the host
    has this version already), and what the host's node kinds need there from its
    Debian repositories (Docker's engine for container and pod nodes; libvirt, QEMU and
    python3-libvirt for vm nodes), starting their daemons; then check them as `lab up`.

    \b
    Example:
      lab hosts install examples/multihost.yaml
    """
    from lab.hosts import agent, machinery, preflight
    from lab.hosts.client import agent as agent_of
    from lab.hosts.ssh import Hosts, each

    topo = _hosts_of(file)
    kinds = machinery.kinds_on(topo)
    progress = _progress(as_json)
    with _one_sentence(), Hosts(topo.hosts.values()) as hosts:
        facts = preflight.check(list(hosts), topo.labid)
        progress("hosts checked; installing the agent and what the nodes need")
        wheels = agent.plan({n: f.target() for n, f in facts.items()})
        done = each(hosts, lambda h: agent.install(h, *wheels[h.name]))
        added = each(hosts, lambda h: machinery.install(h, kinds[h.name]))
        found = each(hosts, lambda h: machinery.check(
            h, agent_of(h.spec, done[h.name].python, h), kinds[h.name]))  # fmt: skip
    result = {n: {**d.as_dict(), "added": added[n], "kinds": found[n]} for n, d in done.items()}
    if not _emit(result, as_json):
        for d in done.values():
            what = "reused" if d.reused else f"installed ({d.sent_bytes / 2**20:.0f} MiB sent)"
            out.print(f"{d.host}: agent {d.tag} {what} in {d.seconds:.1f} s")
            for phrase in added[d.host]:
                out.print(f"{d.host}: {phrase}")
            if found[d.host]:
                out.print(f"{d.host}: ready for {', '.join(sorted(found[d.host]))} nodes")


@hosts_app.command("purge")
def hosts_purge(file: Path, as_json: bool = JSON):
    """Remove the racklab agent from every host in FILE.

    \b
    Example:
      lab hosts purge examples/multihost.yaml
    """
    from lab.hosts import agent
    from lab.hosts.ssh import Hosts, each

    topo = _hosts_of(file)
    with _one_sentence(), Hosts(topo.hosts.values()) as hosts:
        had = each(hosts, agent.purge)
    if not _emit({"removed": [n for n, h in had.items() if h]}, as_json):
        for n, h in had.items():
            out.print(f"{n}: {'agent removed' if h else 'no agent'}")


@bench_app.command("multihost")
def bench_multihost(file: Path, as_json: bool = JSON):
    """FILE's lab across its hosts (the agent installed, then reused) beside the same lab
    on this machine: lab up times and round trips across racks and within one.

    \b
    Example:
      lab bench multihost examples/multihost.yaml
    """
    from lab.bench import multihost

    _need_root()
    topo = _hosts_of(file)
    with _one_sentence():
        result = multihost.run(topo, progress=_progress(as_json))
    if not _emit(result, as_json):
        out.print(multihost.table(result), highlight=False, soft_wrap=True)


@bench_app.command("hostimages")
def bench_hostimages(
    file: Path,
    runs: int = typer.Option(3, "--runs", help="How many times to measure."),
    as_json: bool = JSON,
):
    """What sending racklab's images to FILE's first host costs: the node image whole,
    then only a new top layer (twice: an A/A pair), then reused; the VM image, then
    reused. The host needs the agent (`lab hosts install FILE`).

    \b
    Example:
      lab bench hostimages examples/multihost.yaml --runs 3
    """
    from lab.bench import hostimages

    _need_root()
    topo = _hosts_of(file)
    with _one_sentence():
        result = hostimages.run(topo, runs, progress=_progress(as_json))
    if not _emit(result, as_json):
        out.print(hostimages.table(result), highlight=False, soft_wrap=True)
