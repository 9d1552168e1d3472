"""The service shells: hdfs, zk, kafka, yarn, each on the lab's own servers."""

from __future__ import annotations

import sys

import typer

from lab.cli.common import (
    UserError,
    app,
)

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
