"""The event loop a racklab service runs on.

uvloop (libuv behind asyncio's API) where it is installed: a ZooKeeper write through
a follower is mostly one process waking another across loopback (docs/BENCHMARKS.md),
and uvloop's reads, writes and wake-ups cost less Python than the selector loop's.
A node without it (an image built before racklab depended on it, a Python it has no
wheel for) runs asyncio's own loop and says so in the service's log.
A service that measured no faster on uvloop (Kafka's broker) says so and runs on
asyncio's.
``RACKLAB_EVENT_LOOP=asyncio`` (or ``uvloop``) puts every service that can run on that
loop on it, to compare the two.

Every call makes a new loop and closes it at the end: a service forked from racklab's
zygote (lab/backends/process_zygote.py) never runs on a loop of its parent's.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

try:  # imported here, so that the zygote loads it once for every service it forks
    import uvloop
except ImportError:  # the service still runs, on asyncio's loop (said in its log)
    uvloop = None

log = logging.getLogger("lab.services.eventloop")

T = TypeVar("T")
ENV = "RACKLAB_EVENT_LOOP"
MISSING = "asyncio's default event loop: uvloop is not installed here"


def choose(
    need_sendfile: bool = False, asyncio_because: str = ""
) -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    """The loop factory for a new service (None: asyncio's default) and why, in words
    for its log. ``asyncio_because``: why the service runs on asyncio's loop though
    uvloop would serve (``RACKLAB_EVENT_LOOP=uvloop`` still puts it on uvloop, to
    measure again)."""
    wanted = os.environ.get(ENV, "")
    if wanted == "asyncio":
        return None, f"asyncio's default event loop ({ENV}=asyncio)"
    if need_sendfile:
        # uvloop has no loop.sendfile: a DataNode's zero-copy reads need asyncio's
        return None, "asyncio's default event loop (this service needs loop.sendfile)"
    if asyncio_because and wanted != "uvloop":
        return None, f"asyncio's default event loop ({asyncio_because})"
    if uvloop is None:
        return None, MISSING
    return uvloop.new_event_loop, f"uvloop {uvloop.__version__}"


def _chosen(
    need_sendfile: bool, asyncio_because: str
) -> Callable[[], asyncio.AbstractEventLoop] | None:
    factory, why = choose(need_sendfile, asyncio_because)
    # a node that lacks uvloop is worth a warning: its services run slower than they would
    (log.warning if why == MISSING else log.info)("event loop: %s", why)
    return factory


def run(main: Coroutine[Any, Any, T], need_sendfile: bool = False, asyncio_because: str = "") -> T:
    """Run a service's main coroutine on a new loop of the chosen kind, as asyncio.run."""
    with asyncio.Runner(loop_factory=_chosen(need_sendfile, asyncio_because)) as runner:
        return runner.run(main)


def new_loop() -> asyncio.AbstractEventLoop:
    """A new loop of the kind a service runs on, for a server run in a thread (the
    miniclusters' in-process servers), so that tests exercise the loop users get."""
    factory = _chosen(False, "")
    return factory() if factory is not None else asyncio.new_event_loop()
