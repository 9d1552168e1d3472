"""The service shells: hdfs, zk, kafka, yarn, each on the lab's own servers.

Each passes its words on to the service's own command-line module untouched, except
racklab's options (--lab NAME, --json, --help), which may stand anywhere before `--`.
`--help` works with no lab up: it needs nothing but the text below."""

from __future__ import annotations

import sys
import textwrap

import typer

from lab.cli.common import UserError, app

PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def _plain(text) -> None:
    """Tools that lay out their own text (Hadoop- and Kafka-style tables): no wrapping."""
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


def _own_options(args: list[str], name: str, help_text: str, json_ok: bool):
    """(lab, as_json, the tool's words): racklab's options taken from anywhere before
    `--`; --help (or -h as the first word) prints the command's help and exits 0."""
    end = args.index("--") if "--" in args else len(args)
    head, tail = list(args[:end]), list(args[end + 1 :])
    if "--help" in head or head[:1] == ["-h"]:
        sys.stdout.write(help_text)
        raise typer.Exit(0)
    lab, as_json, rest = None, False, []
    it = iter(head)
    for a in it:
        if a == "--lab":
            lab = next(it, None)
            if lab is None:
                raise UserError(f"lab {name}: --lab needs a lab name")
        elif a.startswith("--lab="):
            lab = a.split("=", 1)[1]
        elif a == "--json":
            if not json_ok:
                raise UserError(
                    f"lab {name} prints what the real tool prints and has no --json output"
                )
            as_json = True
        else:
            rest.append(a)
    return lab, as_json, rest + tail


def _help(summary: str, usage: str, commands: str, examples: list[str], codes: str) -> str:
    ex = "\n".join(f"  {e}" for e in examples)
    return (
        f"Usage: {usage}\n\n{textwrap.fill(summary, 78, initial_indent='  ', subsequent_indent='  ')}"
        f"\n\nCommands:\n{_fit(commands)}\n\nOptions:\n"
        "  --lab NAME  Which lab (default: the one that is up).\n"
        + ("  --json      Machine-readable output (errors too).\n" if "--json" in usage else "")
        + f"  --help      Show this message and exit.\n\nExamples:\n{ex}\n\n"
        + textwrap.fill(f"Exit codes: {codes}", 79, subsequent_indent="  ")
        + "\n"
    )


def _fit(text: str) -> str:
    """The tools' usage lines wrapped to 80 columns, continuations indented deeper."""
    lines = []
    for line in text.rstrip().splitlines():
        pad = " " * (len(line) - len(line.lstrip()))
        lines += textwrap.wrap(line, 79, initial_indent="", subsequent_indent=pad + "    ",
                               break_on_hyphens=False) or [""]  # fmt: skip
    return "\n".join(lines)


def _hdfs_commands(usage: str) -> str:
    """Hadoop's usage, one `dfs -X` per line (its own text joins them with ' | ')."""
    body = usage.split("\n", 1)[1]
    dfs, rest = body.split("  fsck", 1)
    lines = [line.strip() for line in dfs.splitlines() if line.strip()]
    generic = ""
    if lines and lines[0].endswith("one of:"):  # "dfs [-D KEY=VALUE]... one of:"
        generic = lines.pop(0).removeprefix("dfs ").removesuffix(" one of:")
    ops = " | ".join(lines).removeprefix("dfs ").split(" | ")
    note = f"  (each dfs command takes Hadoop's generic {generic} first)\n" if generic else ""
    return note + "\n".join(f"  dfs {op}" for op in ops) + "\n  fsck" + rest


def _indent(text: str) -> str:
    return "\n".join("  " + line.strip() for line in text.strip().splitlines() if line.strip())


@app.command(context_settings=PASSTHROUGH, add_help_option=False)
def hdfs(ctx: typer.Context):
    """HDFS shell on the lab's NameNode: dfs, fsck, dfsadmin."""
    from lab.services.hdfs import shell

    help_text = _help(
        "Hadoop's `hdfs` command (FsShell, fsck, dfsadmin) against the lab's NameNode, "
        "with Hadoop's output and error messages.",
        "lab hdfs [--lab NAME] COMMAND [ARGS...]",
        _hdfs_commands(shell.USAGE),
        [
            "lab hdfs dfs -mkdir -p /data",
            "lab hdfs dfs -put notes.txt /data",
            "lab hdfs dfs -ls /data",
            "lab hdfs fsck / -files -blocks -racks",
            "lab hdfs dfsadmin -report",
        ],  # fmt: skip
        "0 done, 1 an operation failed, 255 bad usage (as Hadoop's shell); 2 no such lab.",
    )
    lab, _, args = _own_options(ctx.args, "hdfs", help_text, json_ok=False)
    words = args[2:] if args[:1] == ["--user"] else args
    if words and words[0] not in shell.COMMANDS:  # before any lab is looked at
        sys.stderr.write(f"{words[0]}: Unknown command\n{shell.USAGE}")  # Hadoop's words
        raise typer.Exit(255)
    from lab.orchestrator import lab as orch

    nn = orch.service_addresses(orch.resolve_lab(lab), "hdfs", "namenode")[0]
    # dfs over Hadoop IPC on fs.defaultFS and the DataNodes' data transfer, as `hdfs dfs`.
    raise typer.Exit(shell.run(f"{nn}:9870", args, rpc=f"{nn}:8020"))


@app.command(context_settings=PASSTHROUGH, add_help_option=False)
def zk(ctx: typer.Context):
    """ZooKeeper shell on the lab's ensemble, like zkCli.sh."""
    from lab.services.zookeeper import shell

    help_text = _help(
        "zkCli.sh's commands, output and exit codes on the lab's ensemble; with no command, an "
        "interactive shell.",
        "lab zk [--lab NAME] [COMMAND [ARGS...]]",
        _indent("\n".join(shell.USAGE.removeprefix("Commands:").split("|"))),
        ["lab zk ls /", "lab zk create /app hello", "lab zk get -s /app", "lab zk"],
        f"0 done, 1 a ZooKeeper error, {shell.NOT_FOUND} an unknown command (as zkCli.sh); "
        "2 no such lab.",
    )
    lab, _, args = _own_options(ctx.args, "zk", help_text, json_ok=False)
    if args and args[0] not in shell.COMMANDS:  # refused before any lab is looked at
        from lab.cli.common import _fail

        _fail(f"{shell.not_found(args[0])} (lab zk --help lists them)", shell.NOT_FOUND)
    from lab.orchestrator import lab as orch

    servers = orch.service_addresses(orch.resolve_lab(lab), "zookeeper")
    raise typer.Exit(shell.main(["--server", ",".join(f"{a}:2181" for a in servers), *args]))


@app.command(context_settings=PASSTHROUGH, add_help_option=False)
def kafka(ctx: typer.Context):
    """Kafka on the lab's brokers: topics, produce, consume, groups."""
    from lab.services.kafka import cli_support as k

    help_text = _help(
        "Kafka's scripts (kafka-topics, console producer and consumer, consumer-groups) "
        "against the lab's brokers.",
        "lab kafka [--lab NAME] [--json] COMMAND [ARGS...]",
        _indent(k.USAGE),
        [
            "lab kafka topics create demo --partitions 3 --replication-factor 3",
            "lab kafka produce demo hello world",
            "lab kafka consume demo --from-beginning",
            "lab kafka consume demo --group readers   # commits, as --group does",
            "lab kafka topics describe demo --json",
            "lab kafka topics --describe --topic demo   # kafka-topics.sh's flags",
        ],  # fmt: skip
        "0 done, 2 a mistake in the command or a refusal from the brokers.",
    )
    lab, as_json, args = _own_options(ctx.args, "kafka", help_text, json_ok=True)
    from lab.orchestrator import lab as orch

    try:
        k.check_args(args)  # a mistake in the words is told before any lab is looked at
        bs = k.bootstrap(orch.resolve_lab(lab).data)
        code = k.kafka_command(args, bs, as_json=as_json, write=_plain)
    except k.KafkaCliError as e:
        raise UserError(str(e)) from None
    raise typer.Exit(code)


@app.command(context_settings=PASSTHROUGH, add_help_option=False)
def yarn(ctx: typer.Context):
    """YARN on the lab's ResourceManager: jar, application, node, logs."""
    from lab.services.yarn import cli_support as y

    help_text = _help(
        "Hadoop's `yarn` command against the lab's ResourceManager; MapReduce jobs read "
        "and write the lab's HDFS.",
        "lab yarn [--lab NAME] [--json] COMMAND [ARGS...]",
        _indent(y.USAGE.replace("lab yarn ", "")),
        [
            "lab yarn jar wordcount /data /out",
            "lab yarn application -list",
            "lab yarn node -list --json",
        ],  # fmt: skip
        "0 done, 1 the job failed, 2 a mistake in the command.",
    )
    lab, as_json, args = _own_options(ctx.args, "yarn", help_text, json_ok=True)
    from lab.orchestrator import lab as orch

    try:
        y.check_args(args)  # a mistake in the words is told before any lab is looked at
        rm, nn = y.endpoints(orch.resolve_lab(lab).data)
        code = y.yarn_command(args, rm, nn, as_json=as_json, write=_plain)
    except y.YarnCliError as e:
        raise UserError(str(e)) from None
    raise typer.Exit(code)
