"""Seeded scenarios for the stateful differential test: a run of requests from
several sessions over one shared tree, each drawn from what the tree holds by then.

Where test_generated_differential.py sends every opcode once against a fixed tree,
these runs let one request's effect meet the next ones: ephemerals and their owners,
sequence counters after deletes, cversion/pzxid after every kind of change, watches
of every kind set by one session and fired by another's write, a multi's partial
failure, ACLs of every scheme Apache takes without extra providers, sessions closed
with their ephemerals, data at jute.maxbuffer's edge, deep and wide trees, odd path
spellings and non-ASCII names.

The generator learns what exists from the reference server's replies (the paths a
create returned, what a delete removed), so the run stays the same for a seed as
long as the reference answers the same.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lab.services.zookeeper.acl import digest
from lab.services.zookeeper.jute import Writer
from lab.services.zookeeper.proto import (
    ACL,
    AddWatchRequest,
    AuthPacket,
    CheckVersionRequest,
    CheckWatchesRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    ExistsRequest,
    GetACLRequest,
    GetAllChildrenNumberRequest,
    GetChildrenRequest,
    GetDataRequest,
    GetEphemeralsRequest,
    Id,
    MultiHeader,
    Op,
    SetACLRequest,
    SetDataRequest,
    SetWatches,
    SetWatches2,
    SyncRequest,
)

SESSIONS = 3
MAXBUFFER = 0xFFFFF  # jute.maxbuffer's default, Apache's and racklab's

# Names as users write them: plain, numbered, non-ASCII (Java hashes UTF-16 units, so
# astral characters matter for the children's order), long, with spaces and dots.
NAMES = ["a", "b", "c", "n1", "n2", "lock-", "q", "é", "日本", "😀x", "x y", ".d", "_", "z" * 40]
USERS = {"u1": "p1", "u2": "p2"}
WORLD = Id("world", "anyone")
ACLS = {
    "open": [ACL(31, WORLD)],
    "read": [ACL(1, WORLD)],
    "nodelete": [ACL(31 & ~8, WORLD)],
    "creator": [ACL(31, Id("auth", ""))],
    "digest-u1": [ACL(31, Id("digest", digest("u1:p1")))],
    "digest-u2+read": [ACL(31, Id("digest", digest("u2:p2"))), ACL(1, WORLD)],
    "ip-local": [ACL(31, Id("ip", "127.0.0.1"))],
    "ip-net": [ACL(31, Id("ip", "127.0.0.0/8"))],
    "ip-other": [ACL(31, Id("ip", "10.1.2.3")), ACL(1, WORLD)],
    "ip-bad": [ACL(31, Id("ip", "300.1.1.1"))],
    "digest-bad": [ACL(31, Id("digest", "nocolon"))],
    "perms0": [ACL(0, WORLD)],
    "empty": [],
    "dup": [ACL(31, WORLD), ACL(31, WORLD)],
}
# Create modes 0-6, and the opcodes that carry them (TTL modes need createTTL).
MODES = range(7)
VERSIONS = [-1, -1, 0, 0, 1, 2, 5, -2]


@dataclass
class Step:
    slot: int  # which session sends it; -1: the harness closes and reopens that slot
    label: str
    op: int
    body: bytes
    path: str | None  # whose stat (and parent's stat) is read back after the step
    subs: tuple = ()  # (kind, path, create mode) of a create or of a multi's ops
    # setWatches: relativeZxid is the last zxid the server had replied with this many
    # steps back (each server's own), written into the body's first 8 bytes when sent
    rel_back: int | None = None


def _w(*records) -> bytes:
    w = Writer()
    for r in records:
        r.write(w)
    return w.getvalue()


def parent(path: str) -> str:
    i = path.rfind("/")
    return path[:i] if i > 0 else "/"


class Scenario:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.root = f"/s{seed}"  # each scenario its own subtree, on servers it shares
        self.known: list[str] = [self.root]
        self.owned: dict[int, list[str]] = {}  # slot -> its ephemerals

    # --- what the tree holds, learnt from the reference's replies ---------------

    def learn(self, step: Step, reply) -> None:
        if step.op == Op.CLOSE_SESSION:
            for p in self.owned.pop(step.slot, []):
                self._drop(p)
        if not isinstance(reply, tuple) or len(reply) < 2 or reply[0] != 0:
            return
        if step.op == Op.MULTI:
            for sub, (kind, path, mode) in zip(reply[1], step.subs, strict=False):
                if kind == "create" and sub[0] != "error":
                    self._add(dict(sub[1])["path"], step.slot, mode)
                elif kind == "delete" and sub[0] != "error":
                    self._drop(path)
        elif step.op in (Op.CREATE, Op.CREATE2, Op.CREATE_CONTAINER, Op.CREATE_TTL):
            self._add(dict(reply[1])["path"], step.slot, step.subs[0][2])
        elif step.op == Op.DELETE:
            self._drop(step.path)

    def _add(self, path, slot, mode):
        if path not in self.known:
            self.known.append(path)
        if mode in (1, 3):  # ephemeral: gone with its session
            self.owned.setdefault(slot, []).append(path)

    def _drop(self, path):
        self.known = [p for p in self.known if p != path and not p.startswith(path + "/")]

    # --- choices -----------------------------------------------------------------

    def existing(self) -> str:
        return self.rng.choice(self.known) if self.known else self.root

    def new_path(self) -> str:
        base = self.existing()
        if self.rng.random() < 0.1:
            base = self.root + "/nope"
        return f"{base}/{self.rng.choice(NAMES)}"

    def any_path(self) -> str:
        r = self.rng.random()
        p = self.existing() if r < 0.75 else self.new_path()
        if self.rng.random() < 0.08:  # spellings Apache refuses or takes as written
            p = self.rng.choice([p + "/", p + "/.", p + "/..", p.replace("/", "//", 1), p + "/"])
        return p

    def data(self, path: str, overhead: int) -> bytes:
        r = self.rng.random()
        if r < 0.03:
            # a frame of exactly maxbuffer - 1 .. maxbuffer + 2 bytes
            frame = MAXBUFFER + self.rng.randint(-1, 2)
            return b"D" * (frame - overhead - len(path.encode()))
        if r < 0.3:
            return b""
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 40)))

    def acl(self) -> tuple[str, list[ACL]]:
        if self.rng.random() < 0.6:
            return "open", ACLS["open"]
        name = self.rng.choice(list(ACLS))
        return name, ACLS[name]

    def version(self) -> int:
        return self.rng.choice(VERSIONS)

    def create(self, path: str | None = None) -> tuple[str, int, bytes, str, int]:
        path = path or (self.new_path() if self.rng.random() < 0.8 else self.any_path())
        mode = self.rng.choice(MODES)
        if mode in (5, 6) or self.rng.random() < 0.1:
            op = Op.CREATE_TTL
        elif mode == 4 and self.rng.random() < 0.7:
            op = Op.CREATE_CONTAINER
        else:
            op = self.rng.choice([Op.CREATE, Op.CREATE2])
        aname, acl = self.acl()
        # header 8 + path length 4 + data length 4 + acl + flags 4 (+ ttl 8)
        acl_len = 4 + sum(4 + 8 + len(a.id.scheme) + len(a.id.id.encode()) for a in acl)
        data = self.data(path, 20 + acl_len + (8 if op == Op.CREATE_TTL else 0))
        if op == Op.CREATE_TTL:
            ttl = self.rng.choice([1, 60_000, 60_000, 0, -5])
            if ttl < 0 and mode not in (5, 6):
                # Debian's Apache 3.8.0 takes no more connections after this one
                # (test_generated_differential.py's DELIBERATE)
                ttl = 0
            body = CreateTTLRequest(path, data, acl, mode, ttl).serialize()
            label = f"createTTL {path!r} mode={mode} ttl={ttl} acl={aname} data={len(data)}"
        else:
            body = CreateRequest(path, data, acl, mode).serialize()
            label = f"create{op} {path!r} mode={mode} acl={aname} data={len(data)}"
        return label, op, body, path, mode

    # --- one step --------------------------------------------------------------------

    def step(self) -> Step:
        rng = self.rng
        slot = rng.randrange(SESSIONS)
        kind = rng.choices(
            [
                "create", "delete", "set", "get", "children", "exists", "acl", "setacl",
                "sync", "watches", "addwatch", "count", "ephemerals", "whoami", "auth",
                "multi", "multiread", "wide", "deep", "close", "setwatches",
            ],
            [20, 8, 8, 5, 8, 5, 2, 3, 1, 4, 3, 2, 2, 1, 1, 6, 3, 1, 1, 1, 2],
        )[0]  # fmt: skip
        if kind == "close":
            return Step(slot, "close session", Op.CLOSE_SESSION, b"", None)
        if kind == "setwatches":
            # what a client sends on reconnecting: its watches, and the last zxid it saw
            lists = [[self.any_path() for _ in range(rng.randint(0, 3))] for _ in range(5)]
            back = rng.choice([0, 1, 3, 10, 10_000])
            if rng.random() < 0.3:
                op, body = Op.SET_WATCHES, _w(SetWatches(0, *lists[:3]))
            else:
                op, body = Op.SET_WATCHES2, _w(SetWatches2(0, *lists))
            label = f"setWatches{op} back={back} {lists}"
            return Step(slot, label, op, body, None, rel_back=back)
        if kind == "create":
            label, op, body, path, mode = self.create()
            return Step(slot, label, op, body, path, (("create", path, mode),))
        if kind == "delete":
            p, v = self.any_path(), self.version()
            return Step(slot, f"delete {p!r} v={v}", Op.DELETE, DeleteRequest(p, v).serialize(), p)
        if kind == "set":
            p, v = self.any_path(), self.version()
            data = self.data(p, 20)  # header 8, path length 4, data length 4, version 4
            body = SetDataRequest(p, data, v).serialize()
            return Step(slot, f"setData {p!r} v={v} data={len(data)}", Op.SET_DATA, body, p)
        if kind in ("get", "children", "exists"):
            p, watch = self.any_path(), rng.random() < 0.6
            if kind == "get":
                return Step(
                    slot, f"getData {p!r} w={watch}", Op.GET_DATA, _w(GetDataRequest(p, watch)), p
                )
            if kind == "exists":
                return Step(
                    slot, f"exists {p!r} w={watch}", Op.EXISTS, _w(ExistsRequest(p, watch)), p
                )
            op = rng.choice([Op.GET_CHILDREN, Op.GET_CHILDREN2])
            return Step(
                slot, f"getChildren{op} {p!r} w={watch}", op, _w(GetChildrenRequest(p, watch)), p
            )
        if kind == "acl":
            p = self.any_path()
            return Step(slot, f"getACL {p!r}", Op.GET_ACL, _w(GetACLRequest(p)), p)
        if kind == "setacl":
            p, v = self.any_path(), self.version()
            aname, acl = self.acl()
            body = _w(SetACLRequest(p, acl, v))
            return Step(slot, f"setACL {p!r} {aname} v={v}", Op.SET_ACL, body, p)
        if kind == "sync":
            p = self.any_path()
            return Step(slot, f"sync {p!r}", Op.SYNC, _w(SyncRequest(p)), p)
        if kind == "watches":
            p, t = self.any_path(), rng.randint(1, 5)
            op = rng.choice([Op.CHECK_WATCHES, Op.REMOVE_WATCHES])
            return Step(slot, f"watches{op} {p!r} type={t}", op, _w(CheckWatchesRequest(p, t)), p)
        if kind == "addwatch":
            p, mode = self.any_path(), rng.choice([0, 1])
            return Step(
                slot, f"addWatch {p!r} mode={mode}", Op.ADD_WATCH, _w(AddWatchRequest(p, mode)), p
            )
        if kind == "count":
            p = self.any_path()
            body = _w(GetAllChildrenNumberRequest(p))
            return Step(slot, f"allChildrenNumber {p!r}", Op.GET_ALL_CHILDREN_NUMBER, body, p)
        if kind == "ephemerals":
            p = rng.choice(["/", "", self.root, self.existing(), self.root + "/nope"])
            return Step(
                slot, f"getEphemerals {p!r}", Op.GET_EPHEMERALS, _w(GetEphemeralsRequest(p)), None
            )
        if kind == "whoami":
            return Step(slot, "whoAmI", Op.WHO_AM_I, b"", None)
        if kind == "auth":
            user = rng.choice(list(USERS))
            body = AuthPacket(0, "digest", f"{user}:{USERS[user]}".encode()).serialize()
            return Step(slot, f"addAuth digest {user}", Op.AUTH, body, None)
        if kind == "multiread":
            subs = []
            for _ in range(rng.randint(1, 4)):
                p = self.any_path()
                if rng.random() < 0.5:
                    subs.append((Op.GET_DATA, _w(GetDataRequest(p, False)), f"get {p!r}"))
                else:
                    subs.append(
                        (Op.GET_CHILDREN, _w(GetChildrenRequest(p, False)), f"children {p!r}")
                    )
            return Step(
                slot,
                "multiRead " + ", ".join(s[2] for s in subs),
                Op.MULTI_READ,
                _multi(subs),
                None,
            )
        if kind == "wide":
            # many children at once: the order getChildren lists them in changes as
            # Java's HashSet grows
            base = self.existing()
            subs = [
                (Op.CREATE, CreateRequest(f"{base}/w{i}-{rng.choice(NAMES)}", b"", ACLS["open"],
                 rng.choice([0, 2])).serialize(), "create")
                for i in range(rng.randint(8, 60))
            ]  # fmt: skip
            kinds = (("create", None, 0),) * len(subs)
            label = f"multi {len(subs)} creates under {base!r}"
            return Step(slot, label, Op.MULTI, _multi(subs), base, kinds)
        if kind == "deep":
            p, subs = self.existing(), []
            for _ in range(rng.randint(3, 12)):
                p = f"{p}/{rng.choice(NAMES)}"
                subs.append(
                    (Op.CREATE, CreateRequest(p, b"", ACLS["open"], 0).serialize(), "create")
                )
            kinds = (("create", None, 0),) * len(subs)
            return Step(slot, f"multi deep to {p!r}", Op.MULTI, _multi(subs), p, kinds)
        # multi: creates, deletes, sets and checks, any of which may fail
        subs, last, first = [], [], None
        for _ in range(rng.randint(1, 5)):
            r = rng.random()
            if r < 0.4:
                label, op, body, path, mode = self.create()
                subs.append((op, body, label))
                last.append(("create", path, mode))
            elif r < 0.6:
                path, v = self.any_path(), self.version()
                subs.append(
                    (Op.DELETE, DeleteRequest(path, v).serialize(), f"delete {path!r} v={v}")
                )
                last.append(("delete", path, None))
            elif r < 0.8:
                path, v = self.any_path(), self.version()
                body = SetDataRequest(path, b"m", v).serialize()
                subs.append((Op.SET_DATA, body, f"setData {path!r} v={v}"))
                last.append(("set", path, None))
            else:
                path, v = self.any_path(), self.version()
                subs.append(
                    (Op.CHECK, CheckVersionRequest(path, v).serialize(), f"check {path!r} v={v}")
                )
                last.append(("check", path, None))
            first = first or path
        label = "multi " + "; ".join(s[2] for s in subs)
        return Step(slot, label, Op.MULTI, _multi(subs), first, tuple(last))


def _multi(subs) -> bytes:
    w = Writer()
    for op, body, *_ in subs:
        MultiHeader(op, False, -1).write(w)
        w.buf += body
    MultiHeader(-1, True, -1).write(w)
    return w.getvalue()
