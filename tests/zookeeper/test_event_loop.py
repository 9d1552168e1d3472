"""The loop a service runs on (lab/services/eventloop.py): uvloop where a node has it,
asyncio's own where it does not (said in the log), and always a new one, even in a
process forked from a parent that had a loop (racklab's zygote forks services)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from kazoo.client import KazooClient

from lab.services import eventloop
from lab.services.zookeeper.minicluster import racklab_argv, standalone

uvloop = pytest.importorskip("uvloop")

# `import uvloop` fails in this server, as on a node whose image lacks it
WITHOUT_UVLOOP = (
    "import runpy, sys; sys.modules['uvloop'] = None; sys.argv[0] = 'zk';"
    " runpy.run_module('lab.services.zookeeper', run_name='__main__')"
)


def _serve_and_read_log(tmp_path, argv) -> str:
    server = standalone(str(tmp_path), argv=argv).start()
    try:
        zk = KazooClient(hosts=server.hosts, timeout=5)
        zk.start(10)
        zk.create("/loop", b"v")
        assert zk.get("/loop")[0] == b"v"
        zk.stop()
        zk.close()
    finally:
        server.stop()
    return open(server.log_path).read()


def test_a_server_runs_on_uvloop_and_says_so(tmp_path):
    log = _serve_and_read_log(tmp_path, racklab_argv)
    assert f"event loop: uvloop {uvloop.__version__}" in log


def test_without_uvloop_a_server_still_serves_on_asyncios_loop_and_warns(tmp_path):
    log = _serve_and_read_log(tmp_path, lambda cfg: [sys.executable, "-c", WITHOUT_UVLOOP, cfg])
    assert "WARNING lab.services.eventloop event loop: asyncio's default event loop:" in log
    assert "uvloop is not installed here" in log


def test_the_environment_can_ask_for_asyncios_loop(monkeypatch):
    monkeypatch.setenv(eventloop.ENV, "asyncio")
    assert eventloop.choose()[0] is None
    monkeypatch.delenv(eventloop.ENV)
    assert eventloop.choose()[0] is uvloop.new_event_loop
    assert eventloop.choose(need_sendfile=True)[0] is None  # uvloop has no loop.sendfile
    # a service measured faster on asyncio's loop (Kafka's broker) runs there, says why,
    # and can be put on uvloop to measure it again
    factory, why = eventloop.choose(asyncio_because="measured faster on it")
    assert factory is None and why == "asyncio's default event loop (measured faster on it)"
    monkeypatch.setenv(eventloop.ENV, "uvloop")
    assert eventloop.choose(asyncio_because="measured faster on it")[0] is uvloop.new_event_loop
    assert eventloop.choose(need_sendfile=True)[0] is None


def test_a_forked_service_runs_on_a_new_loop_not_its_parents():
    """The parent runs a loop and forks inside it; the child's service gets a loop of
    its own that serves (a connection to itself), as a zygote's fork would."""
    code = textwrap.dedent(
        """
        import asyncio, os, sys
        from lab.services import eventloop

        async def serve_once():
            loop = asyncio.get_running_loop()
            got = loop.create_future()

            async def echo(reader, writer):
                writer.write(await reader.readexactly(4))
                await writer.drain()
                writer.close()

            server = await asyncio.start_server(echo, "127.0.0.1", 0)
            reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
            writer.write(b"ping")
            reply = await reader.readexactly(4)
            server.close()
            return id(loop), type(loop).__module__, reply

        async def parent():
            parent_loop = id(asyncio.get_running_loop())
            pid = os.fork()
            if pid == 0:
                try:
                    child_loop, kind, reply = eventloop.run(serve_once())
                    ok = child_loop != parent_loop and kind.startswith("uvloop") and reply == b"ping"
                except BaseException as e:
                    print(repr(e), flush=True)
                    ok = False
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)

        sys.exit(eventloop.run(parent()))
        """
    )
    root = os.path.dirname(os.path.dirname(eventloop.__file__))
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=os.path.dirname(root),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
