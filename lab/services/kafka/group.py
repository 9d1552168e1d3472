"""Consumer-group coordinator: membership, the join/sync rebalance protocol and
committed offsets, as Kafka's GroupCoordinator does it.

States: Empty -> PreparingRebalance -> CompletingRebalance -> Stable (and back
to PreparingRebalance when a member joins, leaves or times out). A rebalance
completes when every known member has rejoined or the rebalance timeout runs
out; members that did not rejoin are dropped then.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field

from .protocol.errors import Error

log = logging.getLogger("lab.kafka.group")

EMPTY, PREPARING, COMPLETING, STABLE, DEAD = (
    "Empty",
    "PreparingRebalance",
    "CompletingRebalance",
    "Stable",
    "Dead",
)


@dataclass
class Member:
    member_id: str
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    group_instance_id: str | None = None
    assignment: bytes = b""
    last_heartbeat: float = field(default_factory=time.monotonic)
    join_future: asyncio.Future | None = None
    sync_future: asyncio.Future | None = None

    def metadata_for(self, protocol: str) -> bytes:
        for name, meta in self.protocols:
            if name == protocol:
                return meta
        return b""


@dataclass
class OffsetAndMetadata:
    offset: int
    metadata: str | None
    commit_ts: int


class Group:
    def __init__(self, group_id: str):
        self.group_id = group_id
        self.state = EMPTY
        self.generation = 0
        self.protocol_type: str | None = None
        self.protocol: str | None = None
        self.leader: str | None = None
        self.members: dict[str, Member] = {}
        # ids handed out with MEMBER_ID_REQUIRED -> when they lapse: like Kafka's pending
        # member expiration, an id not used to rejoin within its session timeout is
        # forgotten (and then refused with UNKNOWN_MEMBER_ID)
        self.pending: dict[str, float] = {}
        self.offsets: dict[tuple[str, int], OffsetAndMetadata] = {}
        self.join_timer: asyncio.TimerHandle | None = None
        # KIP-345 static membership: group.instance.id -> the member id holding it
        self.static: dict[str, str] = {}

    def fenced(self, member_id: str, instance_id: str | None) -> Error:
        """ClassicGroup.validateMember for a request naming an instance id: the id must be
        held, and by this member (FENCED_INSTANCE_ID: another process took it over)."""
        if not instance_id:
            return Error.NONE
        holder = self.static.get(instance_id)
        if holder is None:
            return Error.UNKNOWN_MEMBER_ID
        return Error.NONE if holder == member_id else Error.FENCED_INSTANCE_ID

    def supports(self, protocol_type: str, protocols: list[tuple[str, bytes]]) -> bool:
        if not self.members:
            return bool(protocols)
        if protocol_type != self.protocol_type:
            return False
        names = {n for n, _ in protocols}
        return bool(
            names & set.intersection(*({n for n, _ in m.protocols} for m in self.members.values()))
        )

    def select_protocol(self) -> str:
        """Every member votes for its most preferred protocol all members support."""
        common = set.intersection(*({n for n, _ in m.protocols} for m in self.members.values()))
        votes: dict[str, int] = {}
        for m in self.members.values():
            for n, _ in m.protocols:
                if n in common:
                    votes[n] = votes.get(n, 0) + 1
                    break
        return max(votes, key=votes.get)


class GroupCoordinator:
    def __init__(self, initial_delay_ms: int, min_session_ms: int, max_session_ms: int):
        self.groups: dict[str, Group] = {}
        self.initial_delay_ms = initial_delay_ms
        self.min_session_ms = min_session_ms
        self.max_session_ms = max_session_ms

    def group(self, group_id: str, create: bool = True) -> Group | None:
        g = self.groups.get(group_id)
        if g is None and create:
            g = self.groups[group_id] = Group(group_id)
        return g

    # ---- JoinGroup ----
    async def join(self, req: dict, version: int, client_id: str, client_host: str) -> dict:
        gid = req["group_id"]
        member_id = req["member_id"]
        session = req["session_timeout_ms"]
        rebalance = req.get("rebalance_timeout_ms", -1)
        if rebalance is None or rebalance < 0:
            rebalance = session
        protocols = [(p["name"], p["metadata"]) for p in req["protocols"]]
        if not gid:
            return _join_error(Error.INVALID_GROUP_ID, member_id)
        if not (self.min_session_ms <= session <= self.max_session_ms):
            return _join_error(Error.INVALID_SESSION_TIMEOUT, member_id)
        g = self.group(gid)
        if not g.supports(req["protocol_type"], protocols):
            return _join_error(Error.INCONSISTENT_GROUP_PROTOCOL, member_id)
        instance = req.get("group_instance_id") if version >= 5 else None
        replaced = False
        if member_id == "":
            # Kafka's generateMemberId: a static member's id starts with its instance id
            member_id = f"{instance or client_id}-{uuid.uuid4()}"
            if instance and instance in g.static:
                # KIP-345: a restarted static member takes its old place (and fences
                # whoever held the instance id); a Stable group does not rebalance
                done = self._replace_static(g, instance, member_id, protocols, session, rebalance)
                if done is not None:
                    return done
                replaced = True  # not Stable, or its protocol changes: a rebalance
            elif version >= 4 and not instance:
                # KIP-394: hand out the id first so a retry does not leave a ghost member
                g.pending[member_id] = time.monotonic() + session / 1000
                return _join_error(Error.MEMBER_ID_REQUIRED, member_id)
        else:
            err = g.fenced(member_id, instance) if instance in g.static else Error.NONE
            if err != Error.NONE:
                return _join_error(err, member_id)
            if member_id not in g.members and member_id not in g.pending:
                return _join_error(Error.UNKNOWN_MEMBER_ID, member_id)
        g.pending.pop(member_id, None)
        loop = asyncio.get_running_loop()
        m = g.members.get(member_id)
        if m is None:
            m = Member(
                member_id,
                client_id,
                client_host,
                session,
                rebalance,
                req["protocol_type"],
                protocols,
                instance,
            )
            g.members[member_id] = m
            g.protocol_type = req["protocol_type"]
            if instance:
                g.static[instance] = member_id
        else:
            same = m.protocols == protocols
            m.protocols = protocols
            m.session_timeout_ms, m.rebalance_timeout_ms = session, rebalance
            m.last_heartbeat = time.monotonic()
            # A retried or repeated join that changes nothing must not restart
            # the rebalance (Kafka answers it with the current generation).
            if same and not replaced and g.state == COMPLETING:
                return self._join_response(g, m)
            if same and not replaced and g.state == STABLE and member_id != g.leader:
                return self._join_response(g, m)
        m.last_heartbeat = time.monotonic()
        if m.join_future is not None and not m.join_future.done():
            m.join_future.set_result(_join_error(Error.UNKNOWN_MEMBER_ID, member_id))
        fut = m.join_future = loop.create_future()
        if g.state in (EMPTY, STABLE, COMPLETING):
            log.info("group %s: member %s joins in state %s", g.group_id, member_id, g.state)
            self._prepare_rebalance(g, initial=g.state == EMPTY)
        self._maybe_complete_join(g)
        return await fut

    def _replace_static(
        self, g: Group, instance: str, new_id: str, protocols, session: int, rebalance: int
    ) -> dict | None:
        """GroupMetadataManager.updateStaticMemberThenRebalanceOrCompleteJoin: the member
        holding ``instance`` is replaced by ``new_id`` with its assignment; whoever waited
        as the old member is told FENCED_INSTANCE_ID. In a Stable group whose protocol
        stays, the answer comes at once with the current generation and no rebalance
        (the leader named is the one before, so a returning leader does not reassign);
        otherwise None: the caller goes on with a join."""
        old_id = g.static[instance]
        old = g.members.pop(old_id)
        _fence(old)
        m = Member(
            new_id,
            old.client_id,
            old.client_host,
            session,
            rebalance,
            old.protocol_type,
            protocols,
            instance,
            old.assignment,
        )
        g.members[new_id] = m
        g.static[instance] = new_id
        leader_before = g.leader
        if g.leader == old_id:
            g.leader = new_id
        log.info(
            "group %s: static member %s (%s) replaces %s in state %s",
            g.group_id,
            instance,
            new_id,
            old_id,
            g.state,
        )
        if g.state == STABLE and g.select_protocol() == g.protocol:
            return {
                "error_code": Error.NONE,
                "generation_id": g.generation,
                "protocol_type": g.protocol_type,
                "protocol_name": g.protocol,
                "leader": leader_before,
                "member_id": new_id,
                "members": [],
            }
        return None

    def _prepare_rebalance(self, g: Group, initial: bool = False) -> None:
        if g.state == COMPLETING:
            # members waiting on SyncGroup must rejoin
            for m in g.members.values():
                if m.sync_future and not m.sync_future.done():
                    m.sync_future.set_result(
                        {"error_code": Error.REBALANCE_IN_PROGRESS, "assignment": b""}
                    )
                    # its session counts from this answer (Kafka's propagateAssignment)
                    m.last_heartbeat = time.monotonic()
        g.state = PREPARING
        log.info("group %s: preparing rebalance (%d members)", g.group_id, len(g.members))
        loop = asyncio.get_running_loop()
        timeout = max((m.rebalance_timeout_ms for m in g.members.values()), default=0) / 1000
        if initial and self.initial_delay_ms > 0:
            # KIP-134: let the first members of a new group arrive together
            timeout = min(timeout, self.initial_delay_ms / 1000)
            g.initial_delay = True
        else:
            g.initial_delay = False
        if g.join_timer:
            g.join_timer.cancel()
        g.join_timer = loop.call_later(timeout, self._complete_join, g)

    def _maybe_complete_join(self, g: Group) -> None:
        if g.state != PREPARING or getattr(g, "initial_delay", False):
            return
        if all(m.join_future is not None and not m.join_future.done() for m in g.members.values()):
            self._complete_join(g)

    def _complete_join(self, g: Group) -> None:
        if g.state != PREPARING:
            return
        if g.join_timer:
            g.join_timer.cancel()
            g.join_timer = None
        g.initial_delay = False
        # members that did not rejoin in time are out
        for mid in [
            mid for mid, m in g.members.items() if m.join_future is None or m.join_future.done()
        ]:
            _unmap_static(g, g.members.pop(mid))
        g.generation += 1
        if not g.members:
            g.state = EMPTY
            g.protocol = g.leader = None
            return
        g.protocol = g.select_protocol()
        if g.leader not in g.members:
            g.leader = next(iter(g.members))
        g.state = COMPLETING
        log.info(
            "group %s: generation %d with %d members, leader %s, protocol %s",
            g.group_id,
            g.generation,
            len(g.members),
            g.leader,
            g.protocol,
        )
        for m in g.members.values():
            m.assignment = b""
            m.join_future.set_result(self._join_response(g, m))
            m.join_future = None
            m.last_heartbeat = time.monotonic()

    @staticmethod
    def _join_response(g: Group, m: Member) -> dict:
        members = (
            [
                {
                    "member_id": x.member_id,
                    "group_instance_id": x.group_instance_id,
                    "metadata": x.metadata_for(g.protocol),
                }
                for x in g.members.values()
            ]
            if m.member_id == g.leader
            else []
        )
        return {
            "error_code": Error.NONE,
            "generation_id": g.generation,
            "protocol_type": g.protocol_type,
            "protocol_name": g.protocol,
            "leader": g.leader,
            "member_id": m.member_id,
            "members": members,
        }

    # ---- SyncGroup ----
    async def sync(self, req: dict) -> dict:
        g = self.group(req["group_id"], create=False)
        err = g.fenced(req["member_id"], req.get("group_instance_id")) if g else Error.NONE
        if err != Error.NONE:
            return {"error_code": err, "assignment": b""}
        if g is None or req["member_id"] not in g.members:
            return {"error_code": Error.UNKNOWN_MEMBER_ID, "assignment": b""}
        if req["generation_id"] != g.generation:
            return {"error_code": Error.ILLEGAL_GENERATION, "assignment": b""}
        m = g.members[req["member_id"]]
        m.last_heartbeat = time.monotonic()
        if g.state == PREPARING:
            return {"error_code": Error.REBALANCE_IN_PROGRESS, "assignment": b""}
        if g.state == STABLE:
            return self._sync_ok(g, m)
        m.sync_future = asyncio.get_running_loop().create_future()
        if m.member_id == g.leader:
            given = {a["member_id"]: a["assignment"] for a in req["assignments"]}
            for x in g.members.values():
                x.assignment = given.get(x.member_id, b"")
            g.state = STABLE
            for x in g.members.values():
                if x.sync_future and not x.sync_future.done():
                    x.sync_future.set_result(self._sync_ok(g, x))
                    x.last_heartbeat = time.monotonic()
        return await m.sync_future

    @staticmethod
    def _sync_ok(g: Group, m: Member) -> dict:
        return {
            "error_code": Error.NONE,
            "assignment": m.assignment,
            "protocol_type": g.protocol_type,
            "protocol_name": g.protocol,
        }

    # ---- Heartbeat / LeaveGroup / expiry ----
    def heartbeat(self, req: dict) -> Error:
        g = self.group(req["group_id"], create=False)
        err = g.fenced(req["member_id"], req.get("group_instance_id")) if g else Error.NONE
        if err != Error.NONE:
            return err
        if g is None or req["member_id"] not in g.members:
            return Error.UNKNOWN_MEMBER_ID
        if req["generation_id"] != g.generation:
            return Error.ILLEGAL_GENERATION
        g.members[req["member_id"]].last_heartbeat = time.monotonic()
        if g.state == PREPARING:
            return Error.REBALANCE_IN_PROGRESS
        return Error.NONE

    def leave(
        self, group_id: str, members: list[tuple[str, str | None]]
    ) -> tuple[Error, list[tuple[str, Error]]]:
        """LeaveGroup of (member id, instance id) pairs: a static member may leave by its
        instance id alone (member id ""), as an admin's removeMembersFromConsumerGroup."""
        g = self.group(group_id, create=False)
        if g is None:
            return Error.NONE, [(mid, Error.UNKNOWN_MEMBER_ID) for mid, _ in members]
        results = []
        for mid, instance in members:
            if instance:
                holder = g.static.get(instance)
                if holder is None:
                    err = Error.UNKNOWN_MEMBER_ID
                elif mid and mid != holder:
                    err = Error.FENCED_INSTANCE_ID
                else:
                    mid, err = holder, Error.NONE
            else:
                err = Error.NONE if mid in g.members else Error.UNKNOWN_MEMBER_ID
            if err == Error.NONE:
                self._remove_member(g, mid)
            results.append((mid, err))
        if len(members) == 1 and results[0][1] != Error.NONE:
            return results[0][1], results
        return Error.NONE, results

    def _remove_member(self, g: Group, mid: str) -> None:
        m = g.members.pop(mid)
        _unmap_static(g, m)
        if m.join_future and not m.join_future.done():
            m.join_future.set_result(_join_error(Error.UNKNOWN_MEMBER_ID, mid))
        if m.sync_future and not m.sync_future.done():
            m.sync_future.set_result({"error_code": Error.UNKNOWN_MEMBER_ID, "assignment": b""})
        if g.state in (STABLE, COMPLETING):
            self._prepare_rebalance(g)
        if g.state == PREPARING:
            if not g.members:
                self._complete_join(g)
            else:
                self._maybe_complete_join(g)

    def expire_sessions(self) -> None:
        now = time.monotonic()
        for gid, g in list(self.groups.items()):
            for mid in [mid for mid, until in g.pending.items() if until <= now]:
                log.info("group %s: pending member %s removed after its session timeout", gid, mid)
                del g.pending[mid]
            if g.state == EMPTY and not g.members and not g.pending and not g.offsets:
                # Kafka turns an empty group without offsets Dead and drops it
                if g.join_timer:
                    g.join_timer.cancel()
                del self.groups[gid]
                continue
            for mid, m in list(g.members.items()):
                # A member waiting for its JoinGroup or SyncGroup answer sends no
                # heartbeats (its connection carries one request at a time), so it is kept,
                # as Kafka's MemberMetadata.shouldKeepAlive keeps it.
                waiting = any(
                    f is not None and not f.done() for f in (m.join_future, m.sync_future)
                )
                if not waiting and now - m.last_heartbeat > m.session_timeout_ms / 1000:
                    log.info("group %s: member %s session expired", g.group_id, mid)
                    self._remove_member(g, mid)

    # ---- deletion (DeleteGroups, OffsetDelete) ----
    def deletable(self, group_id: str) -> Error:
        """Kafka's handleDeleteGroups: only an Empty group goes; a Dead or unknown one is
        GROUP_ID_NOT_FOUND, one with members NON_EMPTY_GROUP."""
        g = self.group(group_id, create=False)
        if g is None or g.state == DEAD:
            return Error.GROUP_ID_NOT_FOUND
        if g.state != EMPTY or g.members:
            return Error.NON_EMPTY_GROUP
        return Error.NONE

    def drop(self, group_id: str) -> None:
        g = self.groups.pop(group_id, None)
        if g is not None and g.join_timer:
            g.join_timer.cancel()

    def subscribed_topics(self, group_id: str) -> set[str] | None:
        """The topics the members subscribe to (their ConsumerProtocolSubscription), for
        a consumer group with members; None for a group of another protocol type."""
        g = self.group(group_id, create=False)
        if g is None or not g.members:
            return set()
        if g.protocol_type != "consumer":
            return None
        topics: set[str] = set()
        for m in g.members.values():
            topics |= _subscription_topics(m.metadata_for(g.protocol) if g.protocol else b"")
        return topics

    # ---- offsets ----
    def check_commit(self, req: dict) -> Error:
        g = self.group(req["group_id"], create=False)
        gen = req.get("generation_id_or_member_epoch", -1)
        if gen < 0 and not req.get("member_id"):
            # a standalone consumer (assign()) commits without a generation
            if g is not None and g.members:
                return Error.UNKNOWN_MEMBER_ID
            return Error.NONE
        err = g.fenced(req["member_id"], req.get("group_instance_id")) if g else Error.NONE
        if err != Error.NONE:
            return err
        if g is None or req["member_id"] not in g.members:
            return Error.UNKNOWN_MEMBER_ID
        if gen != g.generation:
            return Error.ILLEGAL_GENERATION
        # As Kafka: members of the current generation may commit while a
        # rebalance is being prepared (the commit before rejoining), not while
        # the new assignment is being handed out.
        if g.state == COMPLETING:
            return Error.REBALANCE_IN_PROGRESS
        g.members[req["member_id"]].last_heartbeat = time.monotonic()
        return Error.NONE

    def store_offset(
        self, group_id: str, topic: str, partition: int, om: OffsetAndMetadata
    ) -> None:
        self.group(group_id).offsets[(topic, partition)] = om

    def describe(self, group_id: str) -> dict:
        g = self.group(group_id, create=False)
        if g is None:
            return {
                "error_code": Error.NONE,
                "group_id": group_id,
                "group_state": DEAD,
                "protocol_type": "",
                "protocol_data": "",
                "members": [],
            }
        return {
            "error_code": Error.NONE,
            "group_id": group_id,
            "group_state": g.state,
            "protocol_type": g.protocol_type or "",
            "protocol_data": g.protocol or "",
            "members": [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "client_id": m.client_id,
                    "client_host": m.client_host,
                    "member_metadata": m.metadata_for(g.protocol) if g.protocol else b"",
                    "member_assignment": m.assignment,
                }
                for m in g.members.values()
            ],
        }


def _unmap_static(g: Group, m: Member) -> None:
    if m.group_instance_id and g.static.get(m.group_instance_id) == m.member_id:
        del g.static[m.group_instance_id]


def _fence(m: Member) -> None:
    """Whoever waits as ``m`` (a replaced static member) is told FENCED_INSTANCE_ID."""
    if m.join_future and not m.join_future.done():
        m.join_future.set_result(_join_error(Error.FENCED_INSTANCE_ID, m.member_id))
    if m.sync_future and not m.sync_future.done():
        m.sync_future.set_result({"error_code": Error.FENCED_INSTANCE_ID, "assignment": b""})


def _subscription_topics(metadata: bytes) -> set[str]:
    """Topics of a ConsumerProtocolSubscription (version, then an array of strings: the
    same prefix in every version); what does not parse subscribes to nothing."""
    try:
        n = int.from_bytes(metadata[2:6], "big", signed=True)
        pos, out = 6, set()
        for _ in range(max(n, 0)):
            size = int.from_bytes(metadata[pos : pos + 2], "big", signed=True)
            out.add(metadata[pos + 2 : pos + 2 + size].decode())
            pos += 2 + size
        return out
    except (UnicodeDecodeError, ValueError):
        return set()


def _join_error(err: Error, member_id: str) -> dict:
    return {
        "error_code": err,
        "generation_id": -1,
        "protocol_name": "",
        "leader": "",
        "member_id": member_id,
        "members": [],
    }
