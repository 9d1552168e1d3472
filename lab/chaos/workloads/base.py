"""What a workload is: client threads driving unmodified public clients against the
lab's service and recording every operation in the history, then a final phase
(after the faults are healed) that reads back what survived, then its checkers.

Each client thread is one Jepsen "process". Rate is the total operations per second
over all threads; each thread paces itself with seeded random gaps, so a run's load
is bounded and repeatable. After an operation whose outcome is unknown (``info``) the
thread continues as a new process (process id + concurrency), as Jepsen does, since
the old operation may still be in flight.
"""

from __future__ import annotations

import random
import threading
import time

from lab.chaos.checkers.base import Verdict
from lab.chaos.history import FAIL, INFO, NOTE, OK, History
from lab.chaos.labctx import ChaosError, LabContext


class Workload:
    name = "?"
    service = "?"  # the lab service it drives; its nodes are the nemesis targets
    default_concurrency = 4
    known_options: tuple[str, ...] = ()  # what options={...} (--option k=v) may set

    def __init__(
        self,
        ctx: LabContext,
        history: History,
        rate: float,
        seed: int,
        concurrency: int | None = None,
        options: dict | None = None,
    ):
        self.ctx = ctx
        self.history = history
        self.rate = rate
        self.seed = seed
        self.concurrency = concurrency or self.default_concurrency
        self.options = dict(options or {})
        unknown = sorted(set(self.options) - set(self.known_options) - {"op_timeout"})
        if unknown:
            raise ChaosError(
                f"workload {self.name} has no option {', '.join(unknown)} (its options: "
                f"{', '.join(sorted({*self.known_options, 'op_timeout'}))})"
            )
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.op_timeout = float(self.options.get("op_timeout", 5.0))

    def opt_bool(self, name: str, default: bool) -> bool:
        """A yes/no option, given as a bool or as text from the command line."""
        v = self.options.get(name, default)
        if isinstance(v, str):
            if v.lower() in ("true", "yes", "on", "1"):
                return True
            if v.lower() in ("false", "no", "off", "0"):
                return False
            raise ChaosError(f"workload option {name} must be true or false, not {v!r}")
        return bool(v)

    # checks before anything runs
    def validate(self) -> None:
        if not self.ctx.services(self.service):
            raise ChaosError(
                f"workload {self.name} needs {self.service}, and lab {self.ctx.name} runs none "
                f"(add services: {{{self.service}: ...}} to its topology)"
            )
        if self.rate <= 0:
            raise ChaosError("--rate must be a positive number of operations per second")

    def nodes(self) -> list[str]:
        return self.ctx.service_nodes(self.service)

    def addr(self, node: str) -> str:
        return self.ctx.addresses[node]

    def leader(self) -> str | None:
        return None

    # life
    def setup(self) -> None: ...

    def start(self, until: float) -> None:
        """Start the client threads; they stop at history time ``until``."""
        for i in range(self.concurrency):
            t = threading.Thread(
                target=self._loop, args=(i, until), name=f"{self.name}-{i}", daemon=True
            )
            t.start()
            self.threads.append(t)

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))

    def _loop(self, worker: int, until: float) -> None:
        rng = random.Random(self.seed * 1000 + worker)
        process = worker
        client = None
        gap = self.concurrency / self.rate
        try:
            client = self.open_client(worker)
            while not self.stop_event.is_set() and self.history.now() < until:
                if self.stop_event.wait(rng.uniform(0.5, 1.5) * gap):
                    break
                if self.history.now() >= until:
                    break
                outcome = self.step(client, process, rng)
                if outcome == INFO:
                    process += self.concurrency
        except Exception as e:  # noqa: BLE001 - recorded; the run carries on without this thread
            self.history.add(INFO, NOTE, "client-error", worker, error=f"{type(e).__name__}: {e}")
        finally:
            if client is not None:
                self.close_client(client)

    def open_client(self, worker: int):
        raise NotImplementedError

    def close_client(self, client) -> None: ...

    def step(self, client, process: int, rng: random.Random) -> str:
        """One operation: invoke, do, complete. Returns ok, fail or info."""
        raise NotImplementedError

    def final_phase(self, recover_s: float) -> None:
        """After healing: give the service up to ``recover_s`` seconds to recover while
        ``final`` reads back what survived."""
        self.final_deadline = time.monotonic() + recover_s
        self.final()

    def final(self) -> None:
        """Read back what survived (recorded in the history); retry until
        ``self.final_deadline`` while the service is still recovering."""

    def retry_until_deadline(self, fn, pause: float = 0.5):
        """fn() until it returns without raising, or the final deadline passes (then
        the last error is raised)."""
        while True:
            try:
                return fn()
            except Exception:
                if time.monotonic() + pause > self.final_deadline:
                    raise
                time.sleep(pause)

    def check(self) -> list[Verdict]:
        raise NotImplementedError

    def teardown(self) -> None: ...

    # helpers for step()
    def record(self, process, f: str, value, fn, classify) -> str:
        """Invoke ``f``, run ``fn()``; ok with its result, or the type ``classify(exc)``
        says (fail: certainly did not happen; info: unknown)."""
        inv = self.history.invoke(process, f, value)
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - every client error is an outcome to record
            kind = classify(e)
            self.history.complete(inv, kind, value, error=f"{type(e).__name__}: {e}"[:300])
            return kind
        self.history.complete(inv, OK, result)
        return OK


__all__ = ["Workload", "OK", "FAIL", "INFO", "ChaosError"]
