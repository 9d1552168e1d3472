"""A ZooKeeper shell that prints as Apache ZooKeeper 3.8's zkCli.sh does, over kazoo, for
`lab zk`:

    python -m lab.services.zookeeper.shell --server 10.0.0.2:2181 ls /
    python -m lab.services.zookeeper.shell --server 10.0.0.2:2181      (interactive)

Commands:
  addauth scheme auth
  config [-c] [-w] [-s]
  create [-s] [-e] [-c] [-t ttl] path [data] [acl]
  delete [-v version] path
  deleteall path [-b batch size]
  get [-s] [-w] path
  getAcl [-s] path
  getAllChildrenNumber path
  getEphemerals path
  ls [-s] [-w] [-R] path
  quit
  set [-s] [-v version] path data
  setAcl [-s] [-v version] [-R] path acl
  stat [-w] path
  sync path
  version
  whoami

Its outputs, error messages and exit codes are zkCli's (tests/zookeeper/test_shell_vs_zkcli.py
runs the same lines through both). zkCli's quota, watch-management, reconfig and history
commands are not here; `lab zk` says "Command not found" for them, as zkCli does for a
command it lacks. kazoo lacks a few of the requests zkCli uses (null data, containers,
TTL nodes, getAllChildrenNumber, getEphemerals, whoAmI): they are sent as the small
jute structs below, through kazoo's own connection.
"""

from __future__ import annotations

import argparse
import shlex
import struct
import sys
import time
from collections import namedtuple
from typing import TextIO

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.protocol.serialization import (
    Create,
    int_struct,
    read_string,
    stat_struct,
    write_buffer,
    write_string,
)
from kazoo.protocol.states import ZnodeStat
from kazoo.security import ACL, OPEN_ACL_UNSAFE, Id

from lab import __version__

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

# name -> (usage, flags without a value, options taking one, positional args min..max)
SPECS = {
    "addauth": ("addauth scheme auth", "", "", 2, 2),
    "config": ("config [-c] [-w] [-s]", "cws", "", 0, 0),
    "create": ("create [-s] [-e] [-c] [-t ttl] path [data] [acl]", "sec", "t", 1, 3),
    "delete": ("delete [-v version] path", "", "v", 1, 1),
    "deleteall": ("deleteall path [-b batch size]", "", "b", 1, 1),
    "get": ("get [-s] [-w] path", "sw", "", 1, 1),
    "getAcl": ("getAcl [-s] path", "s", "", 1, 1),
    "getAllChildrenNumber": ("getAllChildrenNumber path", "", "", 1, 1),
    "getEphemerals": ("getEphemerals path", "", "", 0, 1),
    "ls": ("ls [-s] [-w] [-R] path", "swR", "", 1, 1),
    "set": ("set [-s] [-v version] path data", "s", "v", 2, 2),
    "setAcl": ("setAcl [-s] [-v version] [-R] path acl", "sR", "v", 2, 2),
    "stat": ("stat [-w] path", "w", "", 1, 1),
    "sync": ("sync path", "", "", 1, 1),
    "version": ("version ", "", "", 0, 0),
    "whoami": ("whoami ", "", "", 0, 0),
}
USAGE = __doc__.split("\n\n")[2].strip()
COMMANDS = set(SPECS) | {"help", "quit", "close"}
NOT_FOUND = 127  # zkCli.sh's exit code for a command it does not know

# KeeperException.Code's own words (getCodeMessage), for errors zkCli prints as
# "KeeperErrorCode = <words> for <path>"
CODE_WORDS = {
    -1: "SystemError", -2: "RuntimeInconsistency", -3: "DataInconsistency",
    -4: "ConnectionLoss", -5: "MarshallingError", -6: "Unimplemented",
    -7: "OperationTimeout", -8: "BadArguments", -12: "UnknownSession",
    -13: "NewConfigNoQuorum", -14: "ReconfigInProgress", -100: "APIError",
    -101: "NoNode", -102: "NoAuth", -103: "BadVersion", -108: "NoChildrenForEphemerals",
    -110: "NodeExists", -111: "Directory not empty", -112: "Session expired",
    -113: "Invalid callback", -114: "InvalidACL", -115: "AuthFailed",
    -118: "Session moved", -119: "Not a read-only call",
    -120: "Ephemeral node on local session", -121: "No such watcher",
    -122: "Request timeout", -123: "Reconfig is disabled", -125: "Quota has exceeded",
}  # fmt: skip
# zkCli's CliWrapperException: its own sentence for the common errors
CLI_WORDS = {
    -101: "Node does not exist: ", -108: "Ephemerals cannot have children: ",
    -110: "Node already exists: ", -111: "Node not empty: ", -119: "Not a read-only call: ",
    -114: "Acl is not valid : ", -102: "Insufficient permission : ",
    -8: "Arguments are not valid : ", -103: "version No is not valid : ",
}  # fmt: skip
PERMS = {"r": 1, "w": 2, "c": 4, "d": 8, "a": 16}
EVENT_TYPES = {
    "CREATED": "NodeCreated",
    "DELETED": "NodeDeleted",
    "CHANGED": "NodeDataChanged",
    "CHILD": "NodeChildrenChanged",
}
PERSISTENT, EPHEMERAL, SEQUENTIAL, CONTAINER = 0, 1, 2, 4
PERSISTENT_WITH_TTL = 5


class ShellError(Exception):
    """A line zkCli prints for a failed command (exit code 1)."""


def _acl_bytes(acls) -> bytes:
    b = bytearray(int_struct.pack(len(acls)))
    for a in acls:
        b += int_struct.pack(a.perms) + write_string(a.id.scheme) + write_string(a.id.id)
    return bytes(b)


def _path_and_stat(buf, offset):
    path, offset = read_string(buf, offset)
    return path, ZnodeStat._make(stat_struct.unpack_from(buf, offset))


class CreateWithStat(namedtuple("CreateWithStat", "path data acl flags")):
    """create2 (15), or createContainer (19) for a container: data may be null."""

    @property
    def type(self):
        return 19 if self.flags == CONTAINER else 15

    def serialize(self):
        return (
            write_string(self.path)
            + write_buffer(self.data)
            + _acl_bytes(self.acl)
            + int_struct.pack(self.flags)
        )

    deserialize = staticmethod(_path_and_stat)


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    type = 21

    def serialize(self):
        return CreateWithStat(*self[:4]).serialize() + struct.pack("!q", self.ttl)

    deserialize = staticmethod(_path_and_stat)


class _PathOnly:
    """A request whose body is its path."""

    def serialize(self):
        return write_string(self.path)


def _strings(buf, offset: int, width: int) -> list:
    """A jute vector of records of `width` strings (one: the strings themselves)."""
    (n,), offset = int_struct.unpack_from(buf, offset), offset + 4
    out = []
    for _ in range(max(n, 0)):
        record = []
        for _ in range(width):
            text, offset = read_string(buf, offset)
            record.append(text)
        out.append(record[0] if width == 1 else tuple(record))
    return out


class GetAllChildrenNumber(_PathOnly, namedtuple("GetAllChildrenNumber", "path")):
    type = 104

    @staticmethod
    def deserialize(buf, offset):
        return int_struct.unpack_from(buf, offset)[0]


class GetEphemerals(_PathOnly, namedtuple("GetEphemerals", "path")):
    type = 103

    @staticmethod
    def deserialize(buf, offset):
        return _strings(buf, offset, 1)


class WhoAmI:
    """No fields: not a namedtuple, which would be empty and so false, and kazoo drops the
    answer to a false request."""

    type = 107

    def serialize(self):
        return b""

    @staticmethod
    def deserialize(buf, offset):
        return _strings(buf, offset, 2)  # ClientInfo: authScheme, user


def call(zk: KazooClient, request):
    result = zk.handler.async_result()
    zk._call(request, result)
    return result.get()


def zkcli_usage() -> str:
    """What zkCli prints for help or an unknown command: its own line, then each command."""
    lines = ["ZooKeeper -server host:port -client-configuration properties-file cmd args"]
    return "\n".join(lines + [f"\t{spec[0]}" for spec in SPECS.values()] + ["\tquit "])


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


def validate_path(path: str) -> None:
    """PathUtils.validatePath's checks and words: zkCli refuses before sending."""
    if not path:
        raise ShellError("Path length must be > 0")
    if path[0] != "/":
        raise ShellError("Path must start with / character")
    if len(path) == 1:
        return
    if path[-1] == "/":
        raise ShellError("Path must not end with / character")
    reason, last = None, "/"
    for i in range(1, len(path)):
        c = path[i]
        nxt_end = i + 1 == len(path) or path[i + 1] == "/"
        if c == "\0":
            reason = f"null character not allowed @{i}"
        elif c == "/" and last == "/":
            reason = f"empty node name specified @{i}"
        elif c == "." and last == "." and path[i - 2] == "/" and nxt_end:
            reason = f"relative paths not allowed @{i}"
        elif c == "." and last == "/" and nxt_end:
            reason = f"relative paths not allowed @{i}"
        elif (
            "\u0000" < c <= "\u001f"
            or "\u007f" <= c <= "\u009f"
            or "\ud800" <= c <= "\uf8ff"
            or "\ufff0" <= c <= "\uffff"
        ):
            reason = f"invalid character @{i}"
        if reason:
            raise ShellError(f'Invalid path string "{path}" caused by {reason}')
        last = c


def parse_acl(text: str, out: TextIO) -> list[ACL]:
    """AclParser.parse: comma-separated scheme:id:perm; a malformed entry is reported and
    skipped, an unknown permission letter reported and ignored."""
    acls = []
    for entry in text.split(","):
        first, last = entry.find(":"), entry.rfind(":")
        if first == -1 or last == first:
            print(f"{entry} does not have the form scheme:id:perm", file=out)
            continue
        perms = 0
        for ch in entry[last + 1 :]:
            if ch in PERMS:
                perms |= PERMS[ch]
            else:
                print(f"Unknown perm type: {ch}", file=out)
        acls.append(ACL(perms, Id(entry[:first], entry[first + 1 : last])))
    return acls


def acl_lines(acls) -> str:
    lines = []
    for a in acls:
        perms = "".join(ch for ch in "cdrwa" if a.perms & PERMS[ch])
        lines.append(f"'{a.id.scheme},'{a.id.id}\n: {perms}")
    return "\n".join(lines)


def parse(cmd: str, args: list[str]) -> tuple[set[str], dict[str, str], list[str]]:
    """commons-cli's way: options anywhere on the line, `-x` unknown refused."""
    usage, flags, valued, lo, hi = SPECS[cmd]
    seen, values, rest = set(), {}, []
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-") and len(a) > 1 and not a[1:].lstrip("-").isdigit():
            name = a[1:]
            if name in flags:
                seen.add(name)
            elif name in valued:
                if i + 1 >= len(args):
                    raise ShellError(
                        "org.apache.commons.cli.MissingArgumentException: "
                        f"Missing argument for option: {name}"
                    )
                values[name] = args[i + 1]
                i += 1
            else:
                raise ShellError(
                    f"org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {a}"
                )
        else:
            rest.append(a)
        i += 1
    if not lo <= len(rest) <= hi:
        raise ShellError(usage)
    return seen, values, rest


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ShellError(f"{what} must be a number, not {value!r}") from None


class Shell:
    def __init__(self, zk: KazooClient, out: TextIO, interactive: bool = False) -> None:
        self.zk, self.out, self.interactive = zk, out, interactive

    def say(self, text: str) -> None:
        print(text, file=self.out)

    def watcher(self):
        """zkCli's default watcher prints each event; in a one-shot run nothing waits."""
        if not self.interactive:
            return None

        def fired(event):
            kind = EVENT_TYPES.get(event.type, event.type)
            self.say(
                f"\nWATCHER::\n\nWatchedEvent state:SyncConnected type:{kind} path:{event.path}"
            )
            self.out.flush()

        return fired

    def run(self, argv: list[str]) -> int:
        """One command; zkCli's output; 0, 1 on an error, 127 for an unknown command."""
        if not argv:
            return 0
        cmd, args = argv[0], argv[1:]
        if cmd in ("help", "?"):
            self.say(zkcli_usage())
            return 0
        if cmd not in SPECS:
            self.say(zkcli_usage())
            self.say(not_found(cmd))
            return NOT_FOUND
        try:
            flags, values, rest = parse(cmd, args)
            if rest and cmd != "addauth":
                validate_path(rest[0])
            getattr(self, "do_" + cmd)(flags, values, rest)
        except ShellError as e:
            self.say(str(e))
            return 1
        except KazooException as e:
            code = getattr(type(e), "code", None)
            path = rest[0] if rest else "null"
            if code in CLI_WORDS:
                self.say(CLI_WORDS[code] + path)
            else:
                self.say(f"KeeperErrorCode = {CODE_WORDS.get(code, type(e).__name__)} for {path}")
            return 1
        return 0

    # ------------------------------------------------------------------ commands
    def do_addauth(self, flags, values, rest):
        self.zk.add_auth(rest[0], rest[1])

    def do_config(self, flags, values, rest):
        data, stat = self.zk.get(
            "/zookeeper/config", watch=self.watcher() if "w" in flags else None
        )
        text = (data or b"").decode("utf-8", "replace")
        if "c" in flags:
            # ConfigUtils.getClientConfigStr: the version, then each server's client address
            lines = text.splitlines()
            version = next((ln.split("=", 1)[1] for ln in lines if ln.startswith("version=")), "")
            clients = [
                ln.split(";", 1)[1] for ln in lines if ln.startswith("server.") and ";" in ln
            ]
            self.say(f"{version} {','.join(clients)}")
        else:
            self.say(text.rstrip("\n"))
        if "s" in flags:
            self.say(format_stat(stat))

    def do_create(self, flags, values, rest):
        path = rest[0]
        data = rest[1].encode() if len(rest) > 1 else None
        acl = list(self.zk.default_acl or OPEN_ACL_UNSAFE)
        if len(rest) > 2:
            acl = parse_acl(rest[2], self.out)
            if not acl:
                self.say("KeeperErrorCode = InvalidACL")
                raise ShellError("Acl is not valid : null")
        if "c" in flags and ("e" in flags or "s" in flags):
            raise ShellError(
                "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential."
            )
        mode = (EPHEMERAL if "e" in flags else PERSISTENT) | (SEQUENTIAL if "s" in flags else 0)
        if "t" in values:
            if "e" in flags:
                raise ShellError("TTLs cannot be used with Ephemeral znodes")
            if "c" in flags:
                raise ShellError("TTLs cannot be used with Container znodes")
            ttl = _int(values["t"], "ttl")
            flags_ttl = 6 if "s" in flags else PERSISTENT_WITH_TTL
            created, _ = call(self.zk, CreateTTL(path, data, acl, flags_ttl, ttl))
        elif "c" in flags:
            created, _ = call(self.zk, CreateWithStat(path, data, acl, CONTAINER))
        else:
            created = call(self.zk, Create(path, data, acl, mode))
        self.say(f"Created {created}")

    def do_delete(self, flags, values, rest):
        self.zk.delete(rest[0], version=_int(values.get("v", "-1"), "version"))

    def do_deleteall(self, flags, values, rest):
        if self.zk.exists(rest[0]) is None:
            raise ShellError(f"Node does not exist: {rest[0]}")
        self.zk.delete(rest[0], recursive=True)

    def do_get(self, flags, values, rest):
        data, stat = self.zk.get(rest[0], watch=self.watcher() if "w" in flags else None)
        self.say(data.decode("utf-8", "replace") if data is not None else "null")
        if "s" in flags:
            self.say(format_stat(stat))

    def do_getAcl(self, flags, values, rest):
        acls, stat = self.zk.get_acls(rest[0])
        self.say(acl_lines(acls))
        if "s" in flags:
            self.say(format_stat(stat))

    def do_getAllChildrenNumber(self, flags, values, rest):
        self.say(str(call(self.zk, GetAllChildrenNumber(rest[0]))))

    def do_getEphemerals(self, flags, values, rest):
        self.say("[" + ", ".join(call(self.zk, GetEphemerals(rest[0] if rest else "/"))) + "]")

    def do_ls(self, flags, values, rest):
        watch = self.watcher() if "w" in flags else None
        if "R" in flags:
            # ZKUtil.visitSubTreeDFS: the path, then at each node its sorted children
            # listed first and then each visited in turn
            self.zk.get(rest[0], watch=watch)
            self.say(rest[0])
            self._visit(rest[0], watch)
            return
        children, stat = self.zk.get_children(rest[0], watch=watch, include_data=True)
        self.say("[" + ", ".join(sorted(children)) + "]")
        if "s" in flags:
            self.say(format_stat(stat))

    def _visit(self, node: str, watch) -> None:
        kids = [f"{node.rstrip('/')}/{k}" for k in sorted(self.zk.get_children(node, watch=watch))]
        for kid in kids:
            self.say(kid)
        for kid in kids:
            self._visit(kid, watch)

    def do_set(self, flags, values, rest):
        version = _int(values.get("v", "-1"), "version")
        stat = self.zk.set(rest[0], rest[1].encode(), version=version)
        if "s" in flags:
            self.say(format_stat(stat))

    def do_setAcl(self, flags, values, rest):
        acl = parse_acl(rest[1], self.out)
        version = _int(values.get("v", "-1"), "version")
        stat = self.zk.set_acls(rest[0], acl, version=version)
        if "R" in flags:
            queue = [rest[0]]
            while queue:
                node = queue.pop(0)
                for k in sorted(self.zk.get_children(node)):
                    child = f"{node.rstrip('/')}/{k}"
                    self.zk.set_acls(child, acl)
                    queue.append(child)
        if "s" in flags:
            self.say(format_stat(stat))

    def do_stat(self, flags, values, rest):
        stat = self.zk.exists(rest[0], watch=self.watcher() if "w" in flags else None)
        if stat is None:
            raise ShellError(f"Node does not exist: {rest[0]}")
        self.say(format_stat(stat))

    def do_sync(self, flags, values, rest):
        self.zk.sync(rest[0])
        self.say("Sync is OK")

    def do_version(self, flags, values, rest):
        self.say(f"ZooKeeper CLI version: racklab {__version__} (lab zk, zkCli.sh 3.8's commands)")

    def do_whoami(self, flags, values, rest):
        self.say("Auth scheme: User")
        for scheme, user in call(self.zk, WhoAmI()):
            self.say(f"{scheme}: {user}")


def run_command(zk: KazooClient, argv: list[str], out: TextIO) -> int:
    """One command as `lab zk CMD ...` runs it: zkCli's output, its exit code."""
    return Shell(zk, out).run(argv)


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
        shell, status = Shell(zk, sys.stdout, interactive=True), 0
        while True:
            try:
                line = input(f"[zk: {args.server}(CONNECTED)] " if sys.stdin.isatty() else "")
            except EOFError:
                break
            try:
                words = shlex.split(line)
            except ValueError as e:
                print(str(e), file=sys.stdout)
                continue
            if words and words[0] in ("quit", "close"):
                break
            status = shell.run(words)
        return status
    finally:
        zk.stop()
        zk.close()


if __name__ == "__main__":
    sys.exit(main())
