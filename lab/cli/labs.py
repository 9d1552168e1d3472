"""Commands on whole labs: validate, up, down, clean, status, exec, shell, graph, logs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.table import Table

from lab.cli.common import (
    JSON,
    LAB,
    UserError,
    _emit,
    _need_root,
    _progress,
    app,
    err,
    out,
    service_app,
    which_lab,
)


@app.command()
def validate(file: Path, as_json: bool = JSON):
    """Check a topology file without making anything.

    Runs every check `lab up` runs before it makes anything, the host's routes against
    the supernet included, and warns about settings that cannot work (more HDFS replicas
    than DataNodes, min.insync.replicas above the brokers).

    \b
    Example:
      lab validate examples/quickstart.yaml
    """
    from lab.orchestrator import lab as orch
    from lab.topology import advice, load

    topo = load(file)
    orch.plan_addresses(topo)  # a supernet the host already routes is refused here too
    warnings = advice.warnings(topo)
    info = {
        "name": topo.name,
        "racks": topo.racks,
        "nodes": {n: nd.kind for n, nd in topo.nodes.items()},
        "services": list(topo.services),
        "warnings": warnings,
    }
    if not _emit(info, as_json):
        for w in warnings:
            err.print(f"warning: {w}", highlight=False, soft_wrap=True, markup=False)
        out.print(f"{file}: ok: lab {topo.name}, {len(topo.racks)} racks, {len(topo.nodes)} nodes")


@app.command()
def up(file: Path, as_json: bool = JSON):
    """Bring a lab up from its topology file.

    \b
    Example:
      lab up examples/quickstart.yaml
    """
    from lab.orchestrator import lab as orch
    from lab.topology import advice, load

    _need_root()
    topo = load(file)
    for w in advice.warnings(topo):
        err.print(f"warning: {w}", highlight=False, soft_wrap=True, markup=False)
    state = orch.up(topo, progress=_progress(as_json))
    data = orch.status(state)  # once: it asks every service how it is
    if not _emit(data, as_json):
        _print_status(data)


@app.command()
def down(
    name: str = typer.Argument(None, help="The lab (default: the only one up)."),
    lab: str = LAB,
    as_json: bool = JSON,
):
    """Tear a lab down: every node, interface, cgroup and file it made.

    \b
    Example:
      lab down quickstart        (or: lab down --lab quickstart)
    """
    from lab.orchestrator import lab as orch

    _need_root()
    name = orch.resolve_lab(which_lab(name, lab)).name
    removed = orch.down(name, progress=_progress(as_json))
    if not _emit({"removed": removed}, as_json):
        # what went, as `lab clean` says it: one kind of node's cleanup can be one
        # line ("cgroup racklab/q (23 processes killed)"), so a bare count said little
        _print_removed(removed)
        out.print(f"lab {name} is down")


@app.command()
def clean(
    name: str = typer.Argument(None, help="The lab (default: leftovers of labs not running)."),
    lab: str = LAB,
    all_labs: bool = typer.Option(False, "--all", help="Every lab, running ones too."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go; remove nothing."),
    as_json: bool = JSON,
):
    """Remove what a lab left behind, also after a crash or kill -9 of `lab up`.

    A named lab goes whatever its state. With no name, only what labs that are not
    running left behind (a lab that may be in use stays: name it, or give --all).

    \b
    Examples:
      lab clean quickstart       (or: lab clean --lab quickstart)
      lab clean --dry-run
    """
    from lab.orchestrator import lab as orch

    _need_root()
    name = which_lab(name, lab)
    if dry_run:
        plan = orch.clean_plan(name, all_labs)
        if not _emit(plan, as_json):
            for n in plan["labs"]:
                out.print(f"would remove lab {n} (its nodes, network, cgroups and state)")
            for labid, what in plan["kernel"].items():
                out.print(f"would remove {', '.join(what)} (lab id {labid})", soft_wrap=True)
            for n in plan["running"]:
                out.print(f"would keep lab {n}: it may be in use (name it, or --all)")
        return
    running = [] if name or all_labs else orch.clean_plan()["running"]
    removed = orch.clean(name, all_labs, progress=_progress(as_json))
    if not _emit({"removed": removed, "kept_running": running}, as_json):
        _print_removed(removed)
        out.print(f"clean: {len(removed)} objects removed")
        if running:
            out.print(
                f"kept {', '.join(running)}: may be in use (name a lab, or --all, to remove it)",
                highlight=False,
            )


@app.command()
def status(
    node: str = typer.Argument(None, help="One node, shown with every service's details."),
    lab: str = LAB,
    wide: bool = typer.Option(False, "--wide", "-w", help="Every service's details inline."),
    watch: float = typer.Option(
        None, "--watch", min=0.5, metavar="SECONDS", help="Refresh every SECONDS until Ctrl-C."
    ),
    as_json: bool = JSON,
):
    """Show a running lab: nodes, addresses, limits, usage, services.

    One line per node that fits 80 columns; `lab status NODE` or `--wide` for each
    service's facts (a ZooKeeper server's mode and zxid, a NameNode's DataNodes, ...).
    With --watch the view is redrawn (with --json: one JSON line per refresh).

    \b
    Examples:
      lab status
      lab status n1 --lab quickstart
      lab status --watch 2
      lab status --json
    """
    import time

    from lab.orchestrator import lab as orch

    state = orch.resolve_lab(lab)

    def snapshot() -> dict:
        data = orch.status(state)
        if node is not None:
            match = [n for n in data["nodes"] if n["name"] == node]
            if not match:
                raise UserError(f"lab {data['name']} has no node {node}")
            data = dict(data, nodes=match)
        return data

    if watch is None:
        data = snapshot()
        if not _emit(data, as_json):
            _print_status(data, wide=wide or node is not None)
        return
    try:
        while True:
            data = snapshot()
            if as_json:  # JSON Lines: one document per refresh, for a script to follow
                sys.stdout.write(json.dumps(data, default=str) + "\n")
                sys.stdout.flush()
            else:
                out.clear()
                out.print(f"[dim]every {watch:g} s, Ctrl-C to stop[/]", highlight=False)
                _print_status(data, wide=wide or node is not None)
            time.sleep(watch)
    except KeyboardInterrupt:  # the way out of --watch
        raise typer.Exit(0) from None


def _mib(n) -> str:
    return "-" if n is None else f"{n / 2**20:.0f}Mi"


def _service_cell(s: dict) -> str:
    if not s["running"]:
        return f"{s['role']} (down)"
    facts = [f"{k}={v}" for k, v in s.items() if k not in ("service", "role", "running", "error")]
    return s["role"] + (f" ({' '.join(facts)})" if facts else "")


# The short names Hadoop, ZooKeeper and Kafka people use, for the one-line-per-node view.
SHORT_ROLES = {
    "server": "zk",
    "broker": "kafka",
    "namenode": "nn",
    "secondarynamenode": "snn",
    "datanode": "dn",
    "resourcemanager": "rm",
    "nodemanager": "nm",
}
LEGEND = "zk ZooKeeper, nn/snn/dn NameNode/2nd/DataNode, rm/nm ResourceMgr/NodeMgr"


def _service_word(s: dict) -> str:
    """A service in a compact status line: its short role, marked when it is down."""
    word = SHORT_ROLES.get(s["role"], s["role"])
    return word if s["running"] else f"{word}:down"


def _print_status(data: dict, wide: bool = False) -> None:
    imp = data.get("inter_rack", {})
    out.print(
        f"[bold]{data['name']}[/] ({data['phase']}) {data['network']['supernet']}, "
        f"cgroup v{data['cgroup_version']}, inter-rack {imp.get('method', 'none')}"
        + (f", up in {data['up_in']:.1f} s" if data.get("up_in") else ""),
        highlight=False,
    )
    t = Table(box=None, pad_edge=False)
    columns = ["node", "kind", "rack", "address", "state", "mem/limit"]
    columns += ["pids", "services"] if wide else ["services"]
    for col in columns:
        t.add_column(col, no_wrap=col != "services", overflow="fold")
    for n in data["nodes"]:
        state = "paused" if n.get("paused") else ("running" if n.get("running") else "stopped")
        services = n.get("services", [])
        cell = ("\n" if wide else " ").join(
            (_service_cell if wide else _service_word)(s) for s in services
        )
        row = [
            n["name"], n["kind"] + (f" ({n['accel']})" if n.get("accel") else ""), n["rack"],
            n.get("address") or "-", state,
            f"{_mib(n.get('memory_bytes'))}/{_mib(n.get('memory_max'))}",
        ]  # fmt: skip
        row += [str(n.get("pids") or "-"), cell or "-"] if wide else [cell or "-"]
        t.add_row(*row)
    out.print(t)
    for host, h in data.get("hosts", {}).items():  # a lab across hosts (docs/MULTIHOST.md)
        rtt = ", ".join(f"{o} {ms:.2f} ms" if ms is not None else f"{o} -"
                        for o, ms in h.get("rtt_ms", {}).items())  # fmt: skip
        out.print(f"host {host} ({h['address']}): racks {', '.join(h['racks']) or '-'}"
                  + (f"; round trip to {rtt}" if rtt else ""), highlight=False)  # fmt: skip
    if not wide and any(n.get("services") for n in data["nodes"]):
        out.print(
            f"[dim]{LEGEND}\nlab status NODE or --wide: each service's details[/]", highlight=False
        )


@app.command(
    "exec",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def exec_(
    ctx: typer.Context,
    node: str = typer.Argument(..., help="The node."),
    lab: str = LAB,
):
    """Run a command inside a node: lab exec NODE -- CMD [ARGS...].

    The exit code is the command's.

    \b
    Example:
      lab exec n1 -- ping -c1 n5
    """
    from lab.orchestrator import lab as orch

    # Click drops the first `--`; one left in front was the user's second
    argv = ctx.args[1:] if ctx.args[:1] == ["--"] else list(ctx.args)
    if argv[:1] == ["--json"]:  # racklab's --json, given before the command
        raise UserError("lab exec prints what the command prints and has no --json output")
    if not argv:
        raise UserError("give the command after --, e.g. lab exec n1 -- hostname")
    n = orch.get_node(orch.resolve_lab(lab), node)
    proc = n.popen(argv)
    raise typer.Exit(proc.wait())


@app.command()
def shell(node: str = typer.Argument(..., help="The node."), lab: str = LAB):
    """Open an interactive shell inside a node.

    \b
    Example:
      lab shell n4
    """
    from lab.orchestrator import lab as orch

    n = orch.get_node(orch.resolve_lab(lab), node)
    n.join_cgroup()
    os.environ["HOSTNAME"] = n.name
    os.environ["PS1"] = f"[{n.name}] \\w# "
    argv = n.command_prefix() + ["bash", "--norc"]
    os.execvp(argv[0], argv)


@app.command()
def graph(
    source: str = typer.Argument(None, help="A topology file, or nothing for the running lab."),
    output: Path = typer.Option(
        Path("lab-graph.svg"), "--output", "-o", help="The file: .svg, .png or .pdf."
    ),
    lab: str = LAB,
    as_json: bool = JSON,
):
    """Draw racks, nodes and their services (Graphviz).

    \b
    Examples:
      lab graph -o lab.svg
      lab graph examples/three-racks.yaml -o racks.png
    """
    from lab.orchestrator import graph as g

    written = g.render(source, lab, output)
    if not _emit({"written": [str(p) for p in written]}, as_json):
        for path in written:
            out.print(f"wrote {path}", highlight=False, soft_wrap=True)


@app.command()
def logs(
    node: str = typer.Argument(..., help="The node."),
    service: str = typer.Argument(None, help="One of its services (e.g. zookeeper-server)."),
    lab: str = LAB,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing what is added."),
    tail: int = typer.Option(None, "--tail", "-n", min=0, help="Only the last N lines of each."),
):
    """A node's services' logs (and its own, if it writes one), or one service's log.

    With several logs each starts with a `==> name <==` line, as `tail` prints them.

    \b
    Examples:
      lab logs n1
      lab logs n1 zookeeper --tail 20
      lab logs n1 kafka -f
    """
    from lab.orchestrator import lab as orch
    from lab.orchestrator import logs as logs_

    def write(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()

    found = logs_.sources(orch.resolve_lab(lab), node, service)
    if not found:
        raise UserError(f"node {node} runs no service and writes no log of its own")
    try:
        logs_.show(found, write, tail=tail, follow=follow)
    except KeyboardInterrupt:  # the way out of --follow, as with tail -f
        raise typer.Exit(0) from None


def _service_command(action: str, example: str):
    def command(
        node: str = typer.Argument(..., help="The node."),
        service: str = typer.Argument(..., help="Its service: zookeeper, kafka-broker, ..."),
        lab: str = LAB,
        as_json: bool = JSON,
    ):
        from lab.orchestrator import control
        from lab.orchestrator import lab as orch

        _need_root()
        done = getattr(control, action)(orch.resolve_lab(lab), node, service)
        done = done if isinstance(done, list) else [done]
        if not _emit({"done": done}, as_json):
            for line in done:
                out.print(line, highlight=False)

    command.__doc__ = f"""{action.capitalize()} one service on one node of a running lab.

    \\b
    Example:
      {example}
    """
    service_app.command(action)(command)


_service_command("stop", "lab service stop n1 zookeeper")
_service_command("start", "lab service start n1 zookeeper")
_service_command("restart", "lab service restart n2 kafka --lab quickstart")


def _print_removed(removed: list[str]) -> None:
    for r in removed:
        out.print(f"removed {r}", highlight=False, soft_wrap=True)
