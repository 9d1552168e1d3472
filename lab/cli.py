"""The `lab` command: parses, prints, and calls the layers below; no logic of its own.

A user mistake (bad file, unknown node, no such lab) prints one sentence and exits 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from lab.topology import TopologyError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="racklab: racks of namespace, container and VM nodes running Python big-data services.",
)
demo_app = typer.Typer(no_args_is_help=True, help="Demonstrations of the Linux primitives.")
app.add_typer(demo_app, name="demo")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print measured figures.")
app.add_typer(bench_app, name="bench")
images_app = typer.Typer(no_args_is_help=True, help="Node images, built offline.")
app.add_typer(images_app, name="images")
chaos_app = typer.Typer(no_args_is_help=True, help="Break a running lab on purpose and check.")
app.add_typer(chaos_app, name="chaos")

out = Console()
err = Console(stderr=True)

JSON = typer.Option(False, "--json", help="Machine-readable output.")
LAB = typer.Option(None, "--lab", "-l", help="Which lab (needed when several are up).")


class UserError(Exception):
    pass


def _user_errors():
    """Failures a user can act on — a bad file, a service that did not come up, Docker
    or libvirtd down, a node or image that would not start or build: one sentence
    naming what failed and where to look, exit code 2, no traceback."""
    from lab.backends import BackendUnavailable
    from lab.backends.base import NodeError
    from lab.images.build import BuildError
    from lab.orchestrator.deploy import DeployError
    from lab.orchestrator.lab import LabError

    return (
        TopologyError,
        UserError,
        LabError,
        BackendUnavailable,
        NodeError,
        DeployError,
        BuildError,
    )


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _emit(data, as_json: bool) -> bool:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=1, default=str) + "\n")
    return as_json


def _progress(quiet: bool):
    if quiet:
        return lambda msg: None
    return lambda msg: err.print(f"[dim]·[/] {msg}", highlight=False)


def _need_root() -> None:
    if os.geteuid() != 0:
        raise UserError("racklab makes namespaces, cgroups and interfaces: run it as root")


@app.command()
def validate(file: Path, as_json: bool = JSON):
    """Check a topology file without making anything."""
    from lab.topology import load

    topo = load(file)
    info = {
        "name": topo.name,
        "racks": topo.racks,
        "nodes": {n: nd.kind for n, nd in topo.nodes.items()},
        "services": list(topo.services),
    }
    if not _emit(info, as_json):
        out.print(f"{file}: ok: lab {topo.name}, {len(topo.racks)} racks, {len(topo.nodes)} nodes")


@app.command()
def up(file: Path, as_json: bool = JSON):
    """Bring a lab up from its topology file."""
    from lab.orchestrator import lab as orch
    from lab.topology import load

    _need_root()
    topo = load(file)
    state = orch.up(topo, progress=_progress(as_json))
    if not _emit(orch.status(state), as_json):
        _print_status(orch.status(state))


@app.command()
def down(
    name: str = typer.Argument(None, help="The lab (default: the only one up)."),
    as_json: bool = JSON,
):
    """Tear a lab down: every node, interface, cgroup and file it made."""
    from lab.orchestrator import lab as orch

    _need_root()
    removed = orch.down(name, progress=_progress(as_json))
    if not _emit({"removed": removed}, as_json):
        out.print(f"removed {len(removed)} objects")


@app.command()
def clean(
    name: str = typer.Argument(None, help="The lab (default: every lab found)."),
    all_labs: bool = typer.Option(False, "--all", help="Every lab, also with several up."),
    as_json: bool = JSON,
):
    """Remove what labs left behind, also after a crash or kill -9 of `lab up`."""
    from lab.orchestrator import lab as orch

    _need_root()
    removed = orch.clean(name, all_labs, progress=_progress(as_json))
    if not _emit({"removed": removed}, as_json):
        for r in removed:
            out.print(f"removed {r}")
        out.print(f"clean: {len(removed)} objects removed")


@app.command()
def status(
    node: str = typer.Argument(None, help="One node, shown with every service's details."),
    lab: str = LAB,
    wide: bool = typer.Option(False, "--wide", "-w", help="Every service's details inline."),
    as_json: bool = JSON,
):
    """Show a running lab: nodes, addresses, limits, usage, services.

    One line per node that fits 80 columns; `lab status NODE` or `--wide` for each
    service's facts (a ZooKeeper server's mode and zxid, a NameNode's DataNodes, ...)."""
    from lab.orchestrator import lab as orch

    data = orch.status(orch.resolve_lab(lab))
    if node is not None:
        match = [n for n in data["nodes"] if n["name"] == node]
        if not match:
            raise UserError(f"lab {data['name']} has no node {node}")
        data = dict(data, nodes=match)
    if not _emit(data, as_json):
        _print_status(data, wide=wide or node is not None)


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
    """Run a command inside a node: lab exec NODE -- CMD [ARGS...]."""
    from lab.orchestrator import lab as orch

    argv = [a for a in ctx.args if a != "--"] if ctx.args[:1] == ["--"] else list(ctx.args)
    if not argv:
        raise UserError("give the command after --, e.g. lab exec n1 -- hostname")
    n = orch.get_node(orch.resolve_lab(lab), node)
    proc = n.popen(argv)
    raise typer.Exit(proc.wait())


@app.command()
def shell(node: str = typer.Argument(..., help="The node."), lab: str = LAB):
    """Open an interactive shell inside a node."""
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
    output: Path = typer.Option(Path("lab-graph.svg"), "--output", "-o", help=".svg or .png"),
    lab: str = LAB,
):
    """Draw racks, nodes and their services (Graphviz)."""
    from lab.orchestrator import graph as g

    for path in g.render(source, lab, output):
        out.print(f"wrote {path}")


PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def _plain(text) -> None:
    """Tools that lay out their own text (Hadoop- and Kafka-style tables): no wrapping."""
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


def _leading_options(args: list[str], *flags: str) -> tuple[dict, list[str]]:
    """Take racklab's own options (--lab NAME, --json) from the front of a pass-through
    command line, leaving the rest (Hadoop-style -ls, -files, ...) untouched."""
    found: dict = {}
    args = list(args)
    while args and args[0] in flags:
        flag = args.pop(0)
        if flag == "--lab":
            if not args:
                raise UserError("--lab needs a lab name")
            found["lab"] = args.pop(0)
        else:
            found[flag.lstrip("-")] = True
    return found, args


@app.command(context_settings=PASSTHROUGH)
def hdfs(ctx: typer.Context):
    """HDFS shell on the lab's NameNode: [--lab L] dfs -put/-get/-ls/-cat/-rm/-mkdir, fsck, dfsadmin."""
    from lab.orchestrator import lab as orch
    from lab.services.hdfs import shell

    opts, args = _leading_options(ctx.args, "--lab")
    nn = orch.service_addresses(orch.resolve_lab(opts.get("lab")), "hdfs", "namenode")[0]
    raise typer.Exit(shell.run(f"{nn}:9870", args))


@app.command(context_settings=PASSTHROUGH)
def zk(ctx: typer.Context):
    """ZooKeeper shell on the lab's ensemble: [--lab L] [ls|get|set|create|delete|stat ...]."""
    from lab.orchestrator import lab as orch
    from lab.services.zookeeper import shell

    opts, args = _leading_options(ctx.args, "--lab")
    servers = orch.service_addresses(orch.resolve_lab(opts.get("lab")), "zookeeper")
    raise typer.Exit(shell.main(["--server", ",".join(f"{a}:2181" for a in servers), *args]))


@app.command(context_settings=PASSTHROUGH)
def kafka(ctx: typer.Context):
    """Kafka: [--lab L] [--json] topics list|create|describe|delete, produce, consume, groups."""
    from lab.orchestrator import lab as orch
    from lab.services.kafka import cli_support as k

    opts, args = _leading_options(ctx.args, "--lab", "--json")
    try:
        bs = k.bootstrap(orch.resolve_lab(opts.get("lab")).data)
        code = k.kafka_command(args, bs, as_json=opts.get("json", False), write=_plain)
    except k.KafkaCliError as e:
        raise UserError(str(e)) from None
    raise typer.Exit(code)


@app.command(context_settings=PASSTHROUGH)
def yarn(ctx: typer.Context):
    """YARN: [--lab L] [--json] jar wordcount IN OUT, application -list/-kill, node -list, logs."""
    from lab.orchestrator import lab as orch
    from lab.services.yarn import cli_support as y

    opts, args = _leading_options(ctx.args, "--lab", "--json")
    try:
        rm, nn = y.endpoints(orch.resolve_lab(opts.get("lab")).data)
        code = y.yarn_command(args, rm, nn, as_json=opts.get("json", False), write=_plain)
    except y.YarnCliError as e:
        raise UserError(str(e)) from None
    raise typer.Exit(code)


VERDICT_EXIT = {True: 0, False: 1, "unknown": 3}


@chaos_app.command("run")
def chaos_run(
    workload: str = typer.Option(
        ..., help="zk-register, zk-lock, kafka-queue, hdfs-files, yarn-jobs"
    ),
    nemesis: str = typer.Option("partition-majority", help="One or several, comma-separated."),
    time_s: float = typer.Option(60.0, "--time", help="Seconds of faults and load."),
    rate: float = typer.Option(10.0, help="Operations per second, all clients together."),
    seed: int = typer.Option(None, help="Repeat a run's schedule exactly."),
    interval: float = typer.Option(10.0, help="Seconds between fault changes."),
    schedule: str = typer.Option("fixed", help="fixed or random"),
    concurrency: int = typer.Option(None, help="Client processes."),
    option: list[str] = typer.Option([], "--option", help="Workload option k=v (repeatable)."),
    lab: str = LAB,
    as_json: bool = JSON,
):
    """Run a workload with real clients under a nemesis; judge the history. Exit 0 valid,
    1 invalid, 3 unknown."""
    from lab.chaos import runner

    _need_root()
    opts = {}
    for kv in option:
        if "=" not in kv:
            raise UserError(f"--option needs key=value, got {kv!r}")
        k, v = kv.split("=", 1)
        opts[k] = v
    run_dir = runner.run(lab, workload, nemesis, time_s=time_s, rate=rate, seed=seed,
                         interval=interval, schedule=schedule, concurrency=concurrency,
                         options=opts, progress=_progress(as_json))  # fmt: skip
    summary = runner.summary(run_dir)
    if not _emit(summary, as_json):
        for line in summary["lines"]:
            out.print(line, highlight=False, soft_wrap=True)
        out.print(f"verdict: {summary['valid']}  report: {summary['report']}", highlight=False)
    raise typer.Exit(VERDICT_EXIT.get(summary["valid"], 3))


@chaos_app.command("runs")
def chaos_runs(as_json: bool = JSON):
    """The chaos runs made on this machine, newest first."""
    from lab.chaos import runner

    runs = runner.list_runs()
    if not _emit(runs, as_json):
        t = Table(box=None)
        for col in ("run", "lab", "workload", "nemesis", "seed", "verdict", "anomalies"):
            t.add_column(col)
        for r in runs:
            t.add_row(Path(r["dir"]).name, str(r.get("lab")), str(r.get("workload")),
                      str(r.get("nemesis")), str(r.get("seed")), str(r.get("valid")),
                      str(r.get("anomalies", "")))  # fmt: skip
        out.print(t)


@chaos_app.command("report")
def chaos_report(
    run: str = typer.Argument(None, help="A run folder, name or prefix (default: the latest)."),
):
    """Where a run's HTML report is (made again from its history if missing)."""
    from lab.chaos import runner

    out.print(str(runner.report(run)))


@chaos_app.command("heal")
def chaos_heal(lab: str = typer.Argument(None, help="The lab (default: the only one up).")):
    """Undo every fault a chaos run may have left (after the runner crashed)."""
    from lab.chaos import runner

    _need_root()
    for line in runner.heal(lab):
        out.print(line)


@images_app.command("build")
def images_build(
    vm: bool = typer.Option(False, "--vm", help="Also the VM disk and kernel."),
    force: bool = typer.Option(False, help="Rebuild every step even when cached."),
    as_json: bool = JSON,
):
    """Build the container image (and with --vm the VM image) from a debootstrap rootfs."""
    from lab.images import build

    _need_root()
    # a BuildError (exit 1) names the step that failed
    results = [build.build_images(force=force, console=err, progress=not as_json)]
    if vm:
        from lab.images import vm as vmimage

        results.append(vmimage.build_vm_image(force=force, console=err, progress=not as_json))
    data = [r.as_dict() for r in results]
    if not _emit(data, as_json):
        for r in results:
            what = "cached" if r.cached else "built"
            out.print(
                f"{what}: {', '.join(f'{k}={v}' for k, v in r.as_dict().items() if k != 'steps')}"
            )


@images_app.command("ls")
def images_ls(as_json: bool = JSON):
    """racklab's images in the Docker engine."""
    from lab.images import build

    images = build.list_images()
    if not _emit(images, as_json):
        for i in images:
            size = f"{(i['size_bytes'] or 0) / 2**20:.0f} MiB"
            out.print(f"{i['kind'] or '-':<6} {i['id']:<14} {size:>9}  {' '.join(i['tags'])}")


@images_app.command("rm")
def images_rm(
    cache: bool = typer.Option(False, "--cache", help="Also the rootfs tarballs and wheels."),
    as_json: bool = JSON,
):
    """Remove racklab's images (images still used by a container stay)."""
    from lab.images import build

    _need_root()
    removed = build.remove_images(cache=cache)
    if not _emit({"removed": removed}, as_json):
        for r in removed:
            out.print(f"removed {r}")


@app.command()
def logs(
    node: str = typer.Argument(..., help="The node."),
    service: str = typer.Argument(None, help="A service on it (e.g. zookeeper-server)."),
    lab: str = LAB,
):
    """A node's own log, or the log of one of its services."""
    from lab.orchestrator import lab as orch

    state = orch.resolve_lab(lab)
    n = orch.get_node(state, node)
    if service is None:
        sys.stdout.write(n.logs())
        return
    found = [
        s
        for s in state.get("services", {}).values()
        if s["node"] == node and service in (s["name"], s["service"])
    ]
    if not found:
        names = [s["name"] for s in state.get("services", {}).values() if s["node"] == node]
        raise UserError(
            f"node {node} runs no service {service} (it runs: {', '.join(names) or 'none'})"
        )
    sys.stdout.write(n.get_file(found[0]["log"]).decode(errors="replace"))


@bench_app.command("overhead")
def bench_overhead(
    kinds: str = typer.Option("native,process,container,vm", help="Comma-separated kinds."),
    runs: int = typer.Option(3, help="Repetitions; medians and spread are reported."),
    quick: bool = typer.Option(False, help="Tiny sizes: a smoke test, not figures."),
    output: Path = typer.Option(Path("runs/overhead"), "--out", help="Where JSON and PNG go."),
    as_json: bool = JSON,
):
    """Native vs process vs container vs VM: CPU, memory, disk, network, start, idle memory."""
    from lab.bench import overhead

    _need_root()
    s = overhead.Settings.quick() if quick else overhead.Settings()
    s.runs = runs if not quick else 1
    try:
        report = overhead.run(kinds.split(","), s, output, progress=_progress(as_json))
    except ValueError as e:
        raise UserError(str(e)) from None
    if not _emit(report, as_json):
        overhead.print_table(
            report, write=lambda line: out.print(line, highlight=False, soft_wrap=True)
        )
        out.print(f"plot: {report['plot']}")


@bench_app.command("updown")
def bench_updown(runs: int = typer.Option(5), files: list[Path] = typer.Argument(None)):
    """lab up / lab down times for the example labs (or the given files)."""
    from lab.bench import updown

    _need_root()
    raise typer.Exit(updown.main(["--runs", str(runs), *map(str, files or [])]))


@demo_app.command("namespaces")
def demo_namespaces(as_json: bool = JSON):
    """For each namespace type, the host's view beside a node's view."""
    from lab.demos import namespaces

    _need_root()
    data = namespaces.run()
    if not _emit(data, as_json):
        namespaces.show(data, out)


@demo_app.command("cgroups")
def demo_cgroups(as_json: bool = JSON):
    """Each limit set, exercised and measured: configured beside measured."""
    from lab.demos import cgroups as demo

    _need_root()
    data = demo.run(progress=_progress(as_json))
    if not _emit(data, as_json):
        demo.show(data, out)


@demo_app.command("quickstart")
def demo_quickstart(
    file: Path = typer.Option(Path("examples/quickstart.yaml"), help="The lab to bring up."),
):
    """Bring up the quickstart lab, show it, run the trial and both demos, tear down."""
    from lab.demos import quickstart

    _need_root()
    ok = quickstart.run(file, out, _progress(False), _print_status)
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    # Standalone mode: usage errors print Click's message and exit 2 by themselves;
    # racklab's own errors arrive here as exceptions and become one sentence. With
    # --debug (anywhere on the line) or RACKLAB_DEBUG=1 they keep their traceback.
    debug = os.environ.get("RACKLAB_DEBUG", "") not in ("", "0")
    if "--debug" in sys.argv[1:]:
        sys.argv.remove("--debug")
        debug = True
    try:
        app()
    except _user_errors() as e:
        if debug:
            raise
        _fail(str(e))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as e:  # a bug of racklab's: still one sentence, and how to see more
        if debug:
            raise
        _fail(
            f"{type(e).__name__}: {e} (unexpected; run again with --debug for the traceback)",
            code=1,
        )


if __name__ == "__main__":
    main()
