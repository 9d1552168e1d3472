"""ZooKeeper workloads with kazoo, unmodified.

zk-register: one znode as a compare-and-set register.
    read   sync() then get(): ZooKeeper serves reads from the server a client is
           connected to, which may lag; sync() first makes the read see every write
           the leader committed before it, which is what a linearizable read needs.
    write  set(path, v): unconditional, with a value never written before (distinct
           values let the checker tell writes apart, and keep its search small)
    cas    [expected, new]: get(), then set(path, new, version=that version) when the
           value is the expected one. A different value means the cas does not happen
           (fail); a BadVersionError too (someone wrote in between).
    Timeouts and lost connections are "info": the write may or may not have happened.

zk-lock: kazoo's Lock recipe on one path. acquire (with a timeout: a timeout is a
    fail, the recipe cleans up its own node), hold for 50-300 ms, release. A client
    whose connection is suspended or lost stops trusting its lock at once (it records
    its release then), as kazoo's documentation tells recipe users to do.
"""

from __future__ import annotations

import itertools
import threading

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import BadVersionError, LockTimeout, NodeExistsError, NoNodeError

from lab.chaos.checkers import linearizable, lock
from lab.chaos.history import FAIL, INFO, OK

from .base import Workload

ZK_PORT = 2181
REGISTER = "/racklab-chaos/register"
LOCK = "/racklab-chaos/lock"


def _fail_or_info(known_not_done: tuple):
    def classify(e: Exception) -> str:
        return FAIL if isinstance(e, known_not_done) else INFO

    return classify


class _ZkWorkload(Workload):
    service = "zookeeper"

    def hosts(self, first: int) -> str:
        nodes = self.nodes()
        order = nodes[first % len(nodes) :] + nodes[: first % len(nodes)]
        return ",".join(f"{self.addr(n)}:{ZK_PORT}" for n in order)

    def client(self, worker: int) -> KazooClient:
        # each client starts at "its" server and fails over to the others in order
        zk = KazooClient(
            hosts=self.hosts(worker),
            timeout=float(self.options.get("session_timeout", 6.0)),
            randomize_hosts=False,
            connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 1.0},
            command_retry={"max_tries": 0},
        )
        zk.start(timeout=15)
        return zk

    def close_client(self, zk) -> None:
        try:
            zk.stop()
            zk.close()
        except Exception:  # noqa: BLE001 - a client of a broken ensemble may not stop cleanly
            pass

    def leader(self) -> str | None:
        from lab.orchestrator.deployers.zookeeper import four_letter

        for n in self.nodes():
            try:
                if "Mode: leader" in four_letter(self.addr(n), ZK_PORT, "srvr", timeout=1):
                    return n
            except OSError:
                continue
        return None


class ZkRegister(_ZkWorkload):
    name = "zk-register"
    known_options = ("sync", "session_timeout", "check_seconds")
    default_concurrency = 5

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        # options={"sync": False}: plain reads, which ZooKeeper serves from the local
        # server's possibly stale copy; the checker is expected to catch stale reads then
        self.sync_reads = self.opt_bool("sync", True)

    def setup(self) -> None:
        zk = self.client(0)
        try:
            zk.ensure_path("/racklab-chaos")
            try:
                zk.create(REGISTER, b"0")
            except NodeExistsError:
                zk.set(REGISTER, b"0")
        finally:
            self.close_client(zk)
        self.initial = 0
        self._values = itertools.count(1)
        self._values_lock = threading.Lock()

    def open_client(self, worker):
        zk = self.client(worker)
        zk._chaos_last = 0  # the last value this client saw: what its cas expects
        return zk

    def fresh(self) -> int:
        with self._values_lock:
            return next(self._values)

    def step(self, zk, process, rng):
        t = self.op_timeout
        f = rng.choice(["read", "read", "write", "cas"])
        if f == "read":

            def read():
                if self.sync_reads:
                    zk.sync_async(REGISTER).get(timeout=t)
                data, _ = zk.get_async(REGISTER).get(timeout=t)
                zk._chaos_last = int(data)
                return int(data)

            return self.record(process, "read", None, read, lambda e: FAIL)
        if f == "write":
            v = self.fresh()

            def write():
                zk.set_async(REGISTER, str(v).encode()).get(timeout=t)
                zk._chaos_last = v
                return v

            return self.record(process, "write", v, write, _fail_or_info((NoNodeError,)))
        old, new = zk._chaos_last, self.fresh()

        class Mismatch(Exception):
            pass

        def cas():
            data, stat = zk.get_async(REGISTER).get(timeout=t)
            if int(data) != old:
                zk._chaos_last = int(data)
                raise Mismatch(f"value is {int(data)}")
            zk.set_async(REGISTER, str(new).encode(), version=stat.version).get(timeout=t)
            zk._chaos_last = new
            return [old, new]

        return self.record(
            process, "cas", [old, new], cas, _fail_or_info((Mismatch, BadVersionError, NoNodeError))
        )

    def final(self) -> None:
        # one last linearizable read once the ensemble is whole again: it must see the
        # value the history leaves the register with
        zk = self.retry_until_deadline(lambda: self.client(0))
        try:

            def read():
                zk.sync_async(REGISTER).get(timeout=self.op_timeout)
                return int(zk.get_async(REGISTER).get(timeout=self.op_timeout)[0])

            inv = self.history.invoke("final", "read", None)
            try:
                value = self.retry_until_deadline(read)
            except Exception as e:  # noqa: BLE001
                self.history.complete(inv, FAIL, None, error=f"{type(e).__name__}: {e}")
            else:
                self.history.complete(inv, OK, value)
        finally:
            self.close_client(zk)

    def check(self):
        budget = float(self.options.get("check_seconds", 60))
        return [
            linearizable.check(
                self.history, linearizable.CASRegister(self.initial), max_seconds=budget
            )
        ]


class ZkLock(_ZkWorkload):
    name = "zk-lock"
    known_options = ("session_timeout",)
    default_concurrency = 4

    def setup(self) -> None:
        zk = self.client(0)
        try:
            zk.ensure_path(LOCK)
        finally:
            self.close_client(zk)

    def open_client(self, worker):
        zk = self.client(worker)
        zk._chaos_trouble = threading.Event()

        def listener(state):
            if state in (KazooState.SUSPENDED, KazooState.LOST):
                zk._chaos_trouble.set()

        zk.add_listener(listener)
        zk._chaos_lock = zk.Lock(LOCK, identifier=f"worker-{worker}")
        return zk

    def step(self, zk, process, rng):
        lk = zk._chaos_lock
        zk._chaos_trouble.clear()

        def acquire():
            if not lk.acquire(timeout=self.op_timeout):
                raise LockTimeout("not acquired in time")
            return True

        outcome = self.record(process, "acquire", None, acquire, _fail_or_info((LockTimeout,)))
        if outcome != OK:
            if outcome == INFO:
                self._give_up(zk, process)
            return outcome
        # hold; a suspended or lost connection ends the hold at once
        zk._chaos_trouble.wait(rng.uniform(0.05, 0.3))

        def release():
            lk.release()
            return True

        outcome = self.record(process, "release", None, release, lambda e: INFO)
        if outcome == INFO:
            self._give_up(zk, process)
        return outcome

    def _give_up(self, zk, process) -> None:
        # the recipe object may be stuck half-way; the next process starts with a new one
        # (the old lock node, if any, goes with the session or is released later)
        try:
            zk._chaos_lock.cancel()
        except Exception:  # noqa: BLE001
            pass
        zk._chaos_lock = zk.Lock(LOCK, identifier=f"process-{process}")

    def check(self):
        return [lock.check(self.history)]
