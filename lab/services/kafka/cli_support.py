"""`lab kafka ...`: parses a command line in the spirit of Kafka's own scripts
(kafka-topics.sh, kafka-console-producer/consumer.sh, kafka-consumer-groups.sh)
and prints what admin.py returns. lab/cli only finds the bootstrap servers
and calls ``kafka_command``.

    topics list
    topics create NAME [--partitions N] [--replication-factor N] [--config K=V ...]
    topics describe [NAME ...]
    topics delete NAME
    produce TOPIC [--key K] [--partition P] [--acks all|1|0] [VALUE ...]   (no VALUE: lines of stdin)
    consume TOPIC [--group G] [--from-beginning] [--max-messages N] [--timeout SECONDS]
    groups list
    groups describe GROUP          (committed offset, log end and lag per partition)

Kafka's own spellings work too, as a user of its scripts types them: `topics --create
--topic NAME --partitions 3`, `topics --list`, `topics --describe [--topic NAME]`,
`topics --delete --topic NAME`, `produce --topic T`, `consume --topic T`, `groups --list`,
`groups --describe --group G` (`--bootstrap-server` is the lab's brokers, so it is
not taken).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping

from . import admin

USAGE = __doc__.split("\n\n")[1].strip("\n")

# kafka-topics.sh's and kafka-consumer-groups.sh's action flags, as this grammar's words
_ACTION_FLAGS = {
    "topics": {
        "--list": "list",
        "--create": "create",
        "--describe": "describe",
        "--delete": "delete",
    },
    "groups": {"--list": "list", "--describe": "describe"},
}
# the flag Kafka's scripts name the object with, per command
_NAME_FLAGS = {"topics": "--topic", "produce": "--topic", "consume": "--topic", "groups": "--group"}


class KafkaCliError(Exception):
    """A user mistake or a refusal from the cluster: one sentence for the user."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # no SystemExit, no usage dump: one clear sentence
        raise KafkaCliError(f"lab kafka: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lab kafka", add_help=False)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    topics = sub.add_parser("topics").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    topics.add_parser("list")
    c = topics.add_parser("create")
    c.add_argument("name")
    c.add_argument("--partitions", type=int, default=-1)
    c.add_argument("--replication-factor", type=int, default=-1)
    c.add_argument("--config", action="append", default=[])
    d = topics.add_parser("describe")
    d.add_argument("names", nargs="*")
    x = topics.add_parser("delete")
    x.add_argument("name")
    pr = sub.add_parser("produce")
    pr.add_argument("topic")
    pr.add_argument("values", nargs="*")
    pr.add_argument("--key")
    pr.add_argument("--partition", type=int)
    pr.add_argument("--acks", default="all", choices=["all", "-1", "1", "0"])
    co = sub.add_parser("consume")
    co.add_argument("topic")
    co.add_argument("--group")
    co.add_argument("--from-beginning", action="store_true")
    co.add_argument("--max-messages", type=int, default=100)
    co.add_argument("--timeout", type=float, default=5.0)
    groups = sub.add_parser("groups").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    groups.add_parser("list")
    g = groups.add_parser("describe")
    g.add_argument("group")
    return p


def _from_kafka_scripts(args: list[str]) -> list[str]:
    """``topics --create --topic t --partitions 3`` (kafka-topics.sh's way) as ``topics
    create t --partitions 3``; a command line already in this grammar is returned as is."""
    if not args:
        return args
    cmd, rest = args[0], list(args[1:])
    if "--bootstrap-server" in rest:
        raise KafkaCliError(
            "lab kafka: --bootstrap-server is not taken: the lab's brokers are used "
            "(choose the lab with --lab NAME)"
        )
    actions = [a for a in rest if a in _ACTION_FLAGS.get(cmd, {})]
    if len(actions) > 1:
        raise KafkaCliError(f"lab kafka {cmd}: only one of {', '.join(actions)}")
    names: list[str] = []
    flag = _NAME_FLAGS.get(cmd)
    while flag in rest:
        i = rest.index(flag)
        if i + 1 >= len(rest):
            raise KafkaCliError(f"lab kafka {cmd}: {flag} needs a name")
        names.append(rest[i + 1])
        del rest[i : i + 2]
    if actions:
        rest.remove(actions[0])
        return [cmd, _ACTION_FLAGS[cmd][actions[0]], *names, *rest]
    if cmd in _ACTION_FLAGS and rest:  # `topics describe --topic t`: the word stays first
        return [cmd, rest[0], *names, *rest[1:]]
    return [cmd, *names, *rest]


def check_args(args: list[str]) -> argparse.Namespace:
    """The command line parsed and checked, before any broker is asked."""
    ns = _parser().parse_args(_from_kafka_scripts(list(args)))
    if getattr(ns, "max_messages", 1) < 1:
        raise KafkaCliError("lab kafka consume: --max-messages must be 1 or more")
    if getattr(ns, "timeout", 1) <= 0:
        raise KafkaCliError("lab kafka consume: --timeout must be a positive number of seconds")
    if getattr(ns, "partition", None) is not None and ns.partition < 0:
        raise KafkaCliError("lab kafka produce: --partition must be 0 or more")
    return ns


KAFKA_PORT = 9092  # where the orchestrator's brokers listen (lab/orchestrator/deployers/kafka.py)


def bootstrap(state: Mapping) -> str:
    """ "ip:9092,..." of a lab's brokers, from its state (services and node addresses)."""
    addrs = state["network"]["nodes"]
    found = [
        f"{addrs[svc['node']].split('/')[0]}:{KAFKA_PORT}"
        for svc in state.get("services", {}).values()
        if svc.get("service") == "kafka" and svc.get("role") == "broker"
    ]
    if not found:
        raise KafkaCliError(f"lab {state.get('name', '?')} runs no Kafka broker")
    return ",".join(found)


def kafka_command(
    args: list[str],
    bootstrap: str,
    as_json: bool = False,
    write: Callable[[str], None] = print,
    stdin=None,
) -> int:
    ns = check_args(args)
    try:
        data, text = _run(ns, bootstrap, stdin or sys.stdin)
    except admin.AdminError as e:
        raise KafkaCliError(str(e)) from None
    if as_json:
        write(json.dumps(data, indent=2, default=_bytes))
    elif text:
        write(text)
    return 0


def _bytes(v):
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    raise TypeError(type(v))


def _run(ns, bs: str, stdin):
    r = admin.run
    if ns.cmd == "topics":
        if ns.action == "list":
            topics = r(admin.list_topics(bs))
            return topics, "\n".join(topics)
        if ns.action == "create":
            cfg = {}
            for kv in ns.config:
                if "=" not in kv:
                    raise KafkaCliError(f"--config {kv!r} is not KEY=VALUE")
                k, v = kv.split("=", 1)
                cfg[k] = v
            res = r(admin.create_topic(bs, ns.name, ns.partitions, ns.replication_factor, cfg))
            return res, f"Created topic {ns.name}."
        if ns.action == "describe":
            res = r(admin.describe_topics(bs, ns.names or None))
            lines = []
            for t in res:
                lines.append(
                    f"Topic: {t['topic']}\tPartitionCount: {len(t['partitions'])}"
                    f"\tReplicationFactor: {len(t['partitions'][0]['replicas']) if t['partitions'] else 0}"
                )
                for p in t["partitions"]:
                    lines.append(
                        f"\tTopic: {t['topic']}\tPartition: {p['partition']}\tLeader: "
                        f"{p['leader'] if p['leader'] >= 0 else 'none'}\tReplicas: "
                        f"{','.join(map(str, p['replicas']))}\tIsr: {','.join(map(str, p['isr']))}"
                        + (f"\tOffline: {','.join(map(str, p['offline']))}" if p["offline"] else "")
                    )
            return res, "\n".join(lines)
        if ns.action == "delete":
            r(admin.delete_topic(bs, ns.name))
            return {"deleted": ns.name}, f"Deleted topic {ns.name}."
    if ns.cmd == "produce":
        values = [v.encode() for v in ns.values] or [line.rstrip("\n").encode() for line in stdin]
        if not values:
            raise KafkaCliError("nothing to produce: give values or lines on standard input")
        key = ns.key.encode() if ns.key is not None else None
        acks = -1 if ns.acks in ("all", "-1") else int(ns.acks)
        res = r(admin.produce(bs, ns.topic, values, [key] * len(values), ns.partition, acks))
        return res, "\n".join(f"{ns.topic}-{x['partition']}@{x['offset']}" for x in res if x)
    if ns.cmd == "consume":
        if ns.group is not None:
            from .groupconsume import consume_group

            res = r(
                consume_group(
                    bs, ns.group, ns.topic, ns.from_beginning, ns.max_messages, ns.timeout
                )
            )
        else:
            res = r(admin.consume(bs, ns.topic, ns.from_beginning, ns.max_messages, ns.timeout))
        return res, "\n".join((m["value"] or b"").decode(errors="replace") for m in res)
    if ns.cmd == "groups":
        if ns.action == "list":
            res = r(admin.list_groups(bs))
            return res, "\n".join(f"{g['group']}\t{g['state']}" for g in res)
        res = r(admin.group_lag(bs, ns.group))
        lines = [
            f"GROUP {res['group']}  state {res['state']}  members {res['members']}",
            "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG",
        ]
        for p in res["partitions"]:
            lines.append(
                f"{p['topic']}\t{p['partition']}\t{p['committed']}\t{p['log_end']}\t{p['lag']}"
            )
        return res, "\n".join(lines)
    raise KafkaCliError(f"lab kafka: unknown command {ns.cmd}")
