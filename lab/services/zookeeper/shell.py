"""A small ZooKeeper shell in the spirit of zkCli.sh, over kazoo, for `lab zk`:

    python -m lab.services.zookeeper.shell --server 10.0.0.2:2181 ls /
    python -m lab.services.zookeeper.shell --server 10.0.0.2:2181      (interactive)

Commands: ls [-s] path | get [-s] path | set path data [version] |
create [-e] [-s] path [data] | delete [-v version] path | deleteall path |
stat path | sync path | getAcl path | help | quit
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import TextIO

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException

STAT_LINES = (
    ("cZxid", "czxid", "zxid"),
    ("ctime", "ctime", "time"),
    ("mZxid", "mzxid", "zxid"),
    ("mtime", "mtime", "time"),
    ("pZxid", "pzxid", "zxid"),
    ("cversion", "cversion", "int"),
    ("dataVersion", "version", "int"),
    ("aclVersion", "aversion", "int"),
    ("ephemeralOwner", "ephemeralOwner", "hex"),
    ("dataLength", "dataLength", "int"),
    ("numChildren", "numChildren", "int"),
)


USAGE = __doc__.split("\n\n", 2)[2].strip()
COMMANDS = {"ls", "get", "set", "create", "delete", "deleteall", "stat", "sync", "getAcl",
            "help", "?", "quit", "exit"}  # fmt: skip
NOT_FOUND = 127  # zkCli.sh's exit code for a command it does not know


def not_found(cmd: str) -> str:
    """zkCli.sh's own words for a command it does not know."""
    return f"Command not found: Command not found {cmd}"


def format_stat(stat) -> str:
    out = []
    for label, attr, kind in STAT_LINES:
        v = getattr(stat, attr)
        if kind == "zxid" or kind == "hex":
            text = f"0x{v & (2**64 - 1):x}"
        elif kind == "time":
            text = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(v / 1000))
        else:
            text = str(v)
        out.append(f"{label} = {text}")
    return "\n".join(out)


def run_command(zk: KazooClient, argv: list[str], out: TextIO) -> int:
    """Run one shell command; print like zkCli; return 0 or 1 on a ZooKeeper error."""
    if not argv:
        return 0
    cmd, args = argv[0], argv[1:]
    flags = {a for a in args if a.startswith("-") and len(a) == 2}
    rest = [a for a in args if a not in flags]
    try:
        if cmd == "ls":
            children, stat = zk.get_children(rest[0], include_data=True)
            print("[" + ", ".join(sorted(children)) + "]", file=out)
            if "-s" in flags:
                print(format_stat(stat), file=out)
        elif cmd == "get":
            data, stat = zk.get(rest[0])
            print(data.decode("utf-8", "replace") if data is not None else "null", file=out)
            if "-s" in flags:
                print(format_stat(stat), file=out)
        elif cmd == "set":
            version = int(rest[2]) if len(rest) > 2 else -1
            zk.set(rest[0], rest[1].encode(), version=version)
        elif cmd == "create":
            data = rest[1].encode() if len(rest) > 1 else b""
            path = zk.create(rest[0], data, ephemeral="-e" in flags, sequence="-s" in flags)
            print(f"Created {path}", file=out)
        elif cmd == "delete":
            version = -1
            if "-v" in flags:
                version = int(rest.pop(0))
            zk.delete(rest[0], version=version)
        elif cmd == "deleteall":
            zk.delete(rest[0], recursive=True)
        elif cmd == "stat":
            stat = zk.exists(rest[0])
            if stat is None:
                print(f"Node does not exist: {rest[0]}", file=out)
                return 1
            print(format_stat(stat), file=out)
        elif cmd == "sync":
            zk.sync(rest[0])
            print("Sync is OK", file=out)
        elif cmd == "getAcl":
            acls, _ = zk.get_acls(rest[0])
            for a in acls:
                print(
                    f"'{a.id.scheme},'{a.id.id}\n: {''.join(sorted(p[0].lower() for p in a.acl_list))}",
                    file=out,
                )
        elif cmd in ("help", "?"):
            print(USAGE, file=out)
        else:
            print(not_found(cmd), file=sys.stderr)
            return NOT_FOUND
    except IndexError:
        print(f"{cmd}: missing argument; try help", file=out)
        return 1
    except KazooException as e:
        name = type(e).__name__.replace("Error", "")
        path = rest[0] if rest else ""
        print(f"{name}: {path}".strip(), file=out)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="lab zk", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--server", default="127.0.0.1:2181", help="host:port[,host:port...]")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    zk = KazooClient(hosts=args.server, timeout=args.timeout)
    try:
        zk.start(timeout=args.timeout)
    except Exception as e:  # a clear message, not a traceback, for an unreachable lab
        print(f"cannot connect to {args.server}: {e}", file=sys.stderr)
        return 2
    try:
        if args.command:
            return run_command(zk, args.command, sys.stdout)
        status = 0
        while True:
            try:
                line = input(f"[zk: {args.server}] ")
            except EOFError:
                break
            words = shlex.split(line)
            if words and words[0] in ("quit", "exit"):
                break
            status = run_command(zk, words, sys.stdout)
        return status
    finally:
        zk.stop()
        zk.close()


if __name__ == "__main__":
    sys.exit(main())
