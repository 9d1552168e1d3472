"""ReceiveBuffer: a connection taken over from its StreamReader reads on exactly where
the reader stopped, hands out views whose bytes never change while they are held, keeps
the StreamWriter working, and ends as a StreamReader would (EOF, timeout)."""

from __future__ import annotations

import asyncio
import random

import pytest

from lab.services.hdfs import receivebuffer
from lab.services.hdfs.receivebuffer import ReceiveBuffer


async def _pair(handler):
    """A loopback server running `handler(reader, writer)`, and a client's streams."""
    done = asyncio.get_running_loop().create_future()

    async def serve(reader, writer):
        try:
            done.set_result(await handler(reader, writer))
        except BaseException as exc:  # the test reads it from `done`
            done.set_exception(exc)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return server, reader, writer, done


def test_reads_on_from_the_stream_reader_and_held_views_keep_their_bytes():
    rnd = random.Random(18)
    # Messages of every size, some larger than a buffer, sent in pieces that cut them
    # anywhere: more bytes than the buffers hold, so they are swapped and reused.
    sizes = [rnd.choice((1, 6, 27, 4096, 65536 + 6, 300_000)) for _ in range(120)]
    sizes += [receivebuffer.CHUNK + 12345, 7]
    stream = rnd.randbytes(3 + sum(sizes))

    async def server(reader, writer):
        assert await reader.readexactly(3) == stream[:3]  # the request, through the reader
        buf = ReceiveBuffer(reader, writer.transport)
        held, pos = [], 3
        for n in sizes:
            view = await buf.read(n, timeout=10)
            assert view == stream[pos : pos + n]
            if rnd.random() < 0.2:
                held.append((pos, view))  # kept past later reads and buffer swaps
            pos += n
            writer.write(n.to_bytes(4, "big"))  # the StreamWriter still writes...
            await writer.drain()  # ...and drains
        assert all(view == stream[p : p + len(view)] for p, view in held)
        with pytest.raises(asyncio.IncompleteReadError) as exc:
            await buf.read(10, timeout=10)
        assert exc.value.partial == b"tail"
        return len(held)

    async def main():
        srv, reader, writer, done = await _pair(server)
        view = memoryview(stream + b"tail")
        i = 0
        while i < len(view):  # pieces of any size, some of them waiting for the server
            step = rnd.choice((1, 100, 5000, 70000, 1 << 20))
            writer.write(view[i : i + step])
            await writer.drain()
            i += step
            if rnd.random() < 0.1:
                await asyncio.sleep(0.001)
        writer.write_eof()
        replies = await reader.readexactly(4 * len(sizes))
        assert [
            int.from_bytes(replies[j : j + 4], "big") for j in range(0, len(replies), 4)
        ] == sizes
        held = await asyncio.wait_for(done, 30)
        writer.close()
        srv.close()
        return held

    assert asyncio.run(main()) > 0


def test_a_read_times_out_when_nothing_comes_and_a_stated_length_takes_no_memory():
    async def server(reader, writer):
        buf = ReceiveBuffer(reader, writer.transport)
        assert await buf.read(2, timeout=5) == b"ab"
        with pytest.raises(TimeoutError):
            await buf.read(1, timeout=0.2)
        # A message said to be 16 MiB long gets room as its bytes come, not before.
        with pytest.raises(TimeoutError):
            await buf.read(16 << 20, timeout=0.2)
        assert len(buf.chunk) <= 2 * receivebuffer.CHUNK

    async def main():
        srv, _reader, writer, done = await _pair(server)
        writer.write(b"ab")
        await writer.drain()
        await asyncio.wait_for(done, 10)
        writer.close()
        srv.close()

    asyncio.run(main())
