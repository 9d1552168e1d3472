"""Dynamic reconfiguration, as ZooKeeper 3.5+ has it: the ensemble's membership as
/zookeeper/config shows it, the dynamic config file each member keeps, and a reconfig
request turned into the next membership.

/zookeeper/config holds one `server.N=host:peerPort:electionPort:role[;client]` line
per member and `version=<hex>`, the zxid of the reconfig that made it (0 for the
zoo.cfg an ensemble started from; with reconfigEnabled, the first zxid of the first
epoch, as Apache's leader stamps it when it is established).

A reconfig is incremental (servers joining, ids leaving) or not (the whole new
member list); it is a txn of type reconfig whose body sets /zookeeper/config (a
SetDataTxn with version -1, as Apache's), so every member applies it in commit order
and learns the new membership from it.
"""

from __future__ import annotations

import os

from .config import ConfigError, Peer, _peer
from .datatree import CONFIG_NODE
from .peerwire import LEADING
from .proto import Err, Op, ZKError
from .server import now_ms
from .txn import SetDataTxn, Txn


def peer_line(p: Peer) -> str:
    line = f"server.{p.sid}={p.host}:{p.peer_port}:{p.election_port}:{p.role}"
    if p.client_port is not None:
        line += f";{p.client_host or '0.0.0.0'}:{p.client_port}"
    return line


def render(servers: dict[int, Peer], version: int) -> bytes:
    """The text of /zookeeper/config."""
    lines = [peer_line(servers[sid]) for sid in sorted(servers)]
    return ("\n".join(lines) + f"\nversion={version:x}").encode()


def parse(data: bytes) -> tuple[dict[int, Peer], int]:
    """Members and version from /zookeeper/config's text (empty: none, version 0)."""
    servers: dict[int, Peer] = {}
    version = 0
    for line in data.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition("=")
        if key == "version":
            version = int(value, 16)
        elif key.startswith("server."):
            sid = int(key[len("server.") :])
            servers[sid] = _peer(sid, value, 0)
    return servers, version


def voters(servers: dict[int, Peer]) -> set[int]:
    return {sid for sid, p in servers.items() if p.role == "participant"}


def _specs(text: str) -> dict[int, Peer]:
    """Comma-separated `server.N=...;client` specs as a client sends them; BadArguments
    for a spec Apache's QuorumPeerConfig refuses (one without its client address
    too), MarshallingError for an id that is not a number (Apache fails parsing it
    outside its checks)."""
    out: dict[int, Peer] = {}
    for spec in text.split(","):
        spec = spec.strip()
        if not spec:
            continue
        key, eq, value = spec.partition("=")
        if not eq or not key.startswith("server."):
            raise ZKError(Err.BAD_ARGUMENTS, f"not a server spec: {spec!r}")
        try:
            sid = int(key[len("server.") :])
        except ValueError:
            raise ZKError(Err.MARSHALLING_ERROR, f"server id in {spec!r}") from None
        try:
            peer = _peer(sid, value, 0)
        except (ConfigError, ValueError):
            raise ZKError(Err.BAD_ARGUMENTS, f"bad server spec {spec!r}") from None
        if peer.role not in ("participant", "observer"):
            raise ZKError(Err.BAD_ARGUMENTS, f"unknown role in {spec!r}")
        if peer.client_port is None:
            # Apache: a member added by reconfig must say where its clients connect
            raise ZKError(Err.BAD_ARGUMENTS, f"no client address in {spec!r}")
        out[sid] = peer
    return out


def next_membership(
    current: dict[int, Peer],
    joining: str | None,
    leaving: str | None,
    new_members: str | None,
) -> dict[int, Peer]:
    """The membership a reconfig request asks for (PrepRequestProcessor's reconfig
    case): incremental from joining and leaving, or the whole of new_members, never
    both; BadArguments for a result without voters."""
    if new_members is not None and (joining is not None or leaving is not None):
        raise ZKError(Err.BAD_ARGUMENTS, "incremental and non-incremental at once")
    if new_members is not None:
        nxt = _specs(new_members)
    else:
        nxt = dict(current)
        for sid in (leaving or "").split(","):
            sid = sid.strip()
            if not sid:
                continue
            try:
                nxt.pop(int(sid), None)
            except ValueError:
                raise ZKError(Err.BAD_ARGUMENTS, f"server id {sid!r}") from None
        nxt.update(_specs(joining or ""))
    if not voters(nxt):
        raise ZKError(Err.BAD_ARGUMENTS, "the new configuration has no voting member")
    return nxt


def write_dynamic_file(cfg_path: str | None, servers: dict[int, Peer], version: int) -> None:
    """As Apache with reconfigEnabled: the membership goes to zoo.cfg.dynamic.<version>
    beside zoo.cfg (written, fsynced, renamed into place), and zoo.cfg loses its
    server lines and names the file in dynamicConfigFile (the first time, the file
    as it was is kept as zoo.cfg.bak)."""
    if not cfg_path:
        return
    dynamic = f"{cfg_path}.dynamic.{version:x}"
    body = "".join(peer_line(servers[sid]) + "\n" for sid in sorted(servers))
    _replace(dynamic, body)
    with open(cfg_path) as f:
        text = f.read()
    if not os.path.exists(cfg_path + ".bak"):
        _replace(cfg_path + ".bak", text)
    kept = [
        line
        for line in text.splitlines()
        if not line.strip().startswith(("server.", "dynamicConfigFile"))
    ]
    _replace(cfg_path, "\n".join(kept + [f"dynamicConfigFile={dynamic}"]) + "\n")


def _replace(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


class Membership:
    """QuorumServer's side of reconfig (a mixin sharing its state): the leader's
    checks, and every member adopting the membership a committed reconfig names."""

    def prepare_reconfig(self, req, auth) -> SetDataTxn:
        """The leader's checks of a reconfig, in Apache's order, and its txn: the new
        /zookeeper/config, whose version is the txn's own zxid."""
        self.check_reconfig_allowed(auth)
        if self.reconfig_pending:
            raise ZKError(Err.RECONFIG_IN_PROGRESS)
        if req.curConfigId not in (-1, self.cfg.config_version):
            raise ZKError(Err.BAD_VERSION)
        nxt = next_membership(
            self.cfg.servers, req.joiningServers, req.leavingServers, req.newMembers
        )
        # A quorum of the new voters must be with us now, or the change could never
        # commit (Leader.isQuorumSynced).
        new_voters = voters(nxt)
        synced = {self.myid} | {sid for sid, f in self.followers.items() if f.synced}
        if len(new_voters & synced) <= len(new_voters) // 2:
            raise ZKError(Err.NEW_CONFIG_NO_QUORUM)
        self.reconfig_pending = True
        return SetDataTxn(CONFIG_NODE, render(nxt, self.next_zxid), -1)

    def commit(self, txn: Txn):
        result = super().commit(txn)
        if txn.hdr.type == Op.RECONFIG and not result.err:
            # A follower no longer in the membership goes on following without a vote
            # (srvr still says follower, as Apache's); a leader left out steps down.
            self.reconfig_pending = False
            self.adopt_membership(*parse(txn.body.data))
            if self.state == LEADING and self.myid not in self.voters:
                self.leaving = "removed from the ensemble by reconfig"
                self.role_over.set()
        return result

    def adopt_membership(self, servers: dict, version: int) -> None:
        changed = version != self.cfg.config_version
        self.cfg.servers = servers
        self.cfg.config_version = version
        self.voters = voters(servers)
        self.quorum = len(self.voters) // 2 + 1
        self.election.update(servers)
        if changed and self.cfg.reconfig_enabled:
            write_dynamic_file(self.cfg.path, servers, version)
        if changed:
            self.move_client_address()

    def _membership_after_recovery(self) -> None:
        """The newest membership we know: a reconfig in our log or snapshot, else
        zoo.cfg's (or its dynamic file's), which /zookeeper/config then shows."""
        node = self.tree.get(CONFIG_NODE)
        servers, version = parse(node.data) if node.data else ({}, -1)
        if servers and version > self.cfg.config_version:
            self.adopt_membership(servers, version)
            return
        self._show_config(self.cfg.config_version)

    def _stamp_first_version(self, epoch: int) -> None:
        """With reconfigEnabled, the zoo.cfg membership (version 0) becomes version
        epoch<<32 once an epoch is established, on the leader and on each follower
        alike (Apache's leader does so at NEWLEADER)."""
        if self.cfg.reconfig_enabled and self.cfg.config_version == 0:
            self.adopt_membership(self.cfg.servers, epoch << 32)
            self._show_config(epoch << 32)

    def _show_config(self, version: int) -> None:
        node = self.tree.get(CONFIG_NODE)
        node.data = render(self.cfg.servers, version)
        node.version = -1  # Apache's setData(..., -1, ...) of the config node
        node.mzxid = version
        node.mtime = now_ms()

    def _synced_voters(self) -> int:
        mine = 1 if self.myid in self.voters else 0
        return mine + sum(1 for f in self.followers.values() if f.synced and f.sid in self.voters)
