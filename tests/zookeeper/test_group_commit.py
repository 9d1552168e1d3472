"""Group commit keeps its promise: many writes in flight at once share fsyncs, and
every one a client heard acknowledged is still there after kill -9 of every server,
standalone and in a 3-server ensemble (where a follower's acknowledgement no longer
waits for each commit, and commits to the other followers may wait for the next
frame)."""

from __future__ import annotations

import signal
import threading
import time

from kazoo.client import KazooClient

from lab.services.zookeeper.minicluster import Ensemble

IN_FLIGHT = 100  # async writes per client between two waits: a pipelined burst


class Writer(threading.Thread):
    """Pipelined creates under /g (path -> data) and sets of /g-<name> (value =
    a counter), recording what the server acknowledged as the replies come in."""

    def __init__(self, zk: KazooClient, name: str):
        super().__init__(daemon=True)
        self.zk = zk
        self.name = name
        self.created: dict[str, bytes] = {}
        self.set_acked = -1  # highest counter value whose set was acknowledged
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def _created(self, path: str, data: bytes):
        def done(result):
            if result.successful():
                with self.lock:
                    self.created[path] = data

        return done

    def _set(self, value: int):
        def done(result):
            if result.successful():
                with self.lock:
                    self.set_acked = max(self.set_acked, value)

        return done

    def run(self) -> None:
        counter = 0
        while not self.stop.is_set():
            batch = []
            for _ in range(IN_FLIGHT):
                counter += 1
                path = f"/g/{self.name}-{counter:06d}"
                data = f"{self.name}:{counter}".encode()
                res = self.zk.create_async(path, data)
                res.rawlink(self._created(path, data))
                batch.append(res)
                if counter % 10 == 0:
                    res = self.zk.set_async(f"/g-{self.name}", str(counter).encode())
                    res.rawlink(self._set(counter))
                    batch.append(res)
            for res in batch:
                while not res.ready():
                    if self.stop.is_set():
                        return  # the servers are gone (kazoo would retry forever)
                    res.wait(0.2)
                if not res.successful():
                    return

    def acked(self) -> tuple[dict[str, bytes], int]:
        with self.lock:
            return dict(self.created), self.set_acked


def run_writers(clients: dict[str, KazooClient], kill, min_acked: int = 600) -> list[Writer]:
    """Write through every client until `min_acked` creates are acknowledged (or 20 s
    pass), then call kill() with the writes still flowing; returns the writers."""
    for name, zk in clients.items():
        zk.ensure_path("/g")
        zk.create(f"/g-{name}", b"-1")
    writers = [Writer(zk, name) for name, zk in clients.items()]
    for w in writers:
        w.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if sum(len(w.acked()[0]) for w in writers) >= min_acked:
            break
        time.sleep(0.05)
    kill()
    # Everything acknowledged up to the kill is what must survive; replies still
    # arriving while the servers die were sent after their txn was durable too.
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(30)
    return writers


def check_survivors(zk: KazooClient, writers: list[Writer]) -> int:
    zk.sync("/g")
    present = set(zk.get_children("/g"))
    total = 0
    for w in writers:
        created, set_acked = w.acked()
        total += len(created)
        missing = [p for p in created if p.rsplit("/", 1)[1] not in present]
        assert not missing, f"{len(missing)} acknowledged creates lost, e.g. {missing[:3]}"
        for path in list(created)[:: max(1, len(created) // 50)]:
            assert zk.get(path)[0] == created[path]
        # A session's writes apply in order: the value on disk is the last set that was
        # acknowledged or one sent after it.
        assert int(zk.get(f"/g-{w.name}")[0]) >= set_acked
    return total


def stop_clients(clients) -> None:
    for zk in clients:
        try:
            zk.stop()
            zk.close()
        except Exception:
            pass


def test_standalone_pipelined_acked_writes_survive_kill9(process_server):
    srv = process_server().start()
    clients = {}
    try:
        for name in ("a", "b"):
            zk = KazooClient(hosts=srv.hosts, timeout=5)
            zk.start(timeout=10)
            clients[name] = zk
        writers = run_writers(clients, lambda: srv.kill(signal.SIGKILL))
    finally:
        stop_clients(clients.values())
    srv.start()
    zk = KazooClient(hosts=srv.hosts, timeout=5)
    zk.start(timeout=10)
    try:
        assert check_survivors(zk, writers) >= 600
        zk.create("/after-restart")
    finally:
        stop_clients([zk])


def test_ensemble_pipelined_acked_writes_survive_kill9_of_all(tmp_path):
    ens = Ensemble(str(tmp_path), n=3, base=235)
    clients = {}
    try:
        ens.start()
        leader = ens.wait_leader()
        for i in ens.servers:
            ens.wait_serving(i)
        # One client on each server: writes forwarded by both followers and taken
        # directly by the leader, all in flight together.
        for i in ens.servers:
            name = "leader" if i == leader else f"f{i}"
            clients[name] = ens.client(i)

        def kill_all():
            procs = [s.proc for s in ens.servers.values()]
            for p in procs:
                p.send_signal(signal.SIGKILL)
            for p in procs:
                p.wait(10)

        writers = run_writers(clients, kill_all)
        stop_clients(clients.values())
        clients = {}
        ens.start()
        ens.wait_leader()
        zk = ens.client()
        clients["check"] = zk
        assert check_survivors(zk, writers) >= 600
        zk.create("/after-restart")
    finally:
        stop_clients(clients.values())
        ens.stop_all()
