"""What more than one recipe test does with kazoo's recipes."""

from __future__ import annotations

import threading
import time

from kazoo.recipe.lock import Lock


def contend_for_lock(clients, path: str, rounds: int = 3) -> tuple[list, list]:
    """Each client takes the Lock at `path` `rounds` times, all at once; returns who
    held it in turn, and every moment two held it together (none, if it works)."""
    inside, overlap, order = [], [], []

    def worker(c, name):
        lock = Lock(c, path, name)
        for _ in range(rounds):
            with lock:
                inside.append(name)
                if len(inside) > 1:
                    overlap.append(list(inside))
                order.append(name)
                time.sleep(0.005)
                inside.remove(name)

    threads = [threading.Thread(target=worker, args=(c, f"w{i}")) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return order, overlap
