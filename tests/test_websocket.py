"""EmotionServer with real clients over real sockets: hello, fan-out, a stalled client, bad input, ports."""

import asyncio
import base64
import json
import logging
import os
import socket
import threading
import time

import pytest
from websockets.asyncio.client import ClientConnection, connect

from emotrack.errors import PortInUseError
from emotrack.realtime.messages import SCHEMA_VERSION, HopMessage, hello_json, to_json
from emotrack.realtime.websocket import EmotionServer

HELLO = hello_json("test-model", 0.5, 16000, "none")


def emotion(seq, pad=0):
    """An emotion message, ``pad`` bytes longer with random text that permessage-deflate cannot shrink."""
    model = "m" + base64.b64encode(os.urandom(pad * 3 // 4)).decode()
    return to_json(
        HopMessage(seq, (seq + 1) * 0.5, time.time(), 0.1, 0.2, 0.3, 0.4, 1, model, {"total": 1.0})
    )


def run(coro, timeout=15):
    async def bounded():
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


async def hello_of(ws: ClientConnection):
    message = json.loads(await ws.recv())
    assert message["type"] == "hello" and message["version"] == SCHEMA_VERSION and message["model"] == "test-model"


async def stalled_client(port: int) -> tuple[ClientConnection, socket.socket]:
    """A websockets client that reads the hello and then nothing: with a tiny receive buffer and a tiny
    library queue, its kernel stops accepting data almost at once, so the stall is real at the TCP level."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect, so the window stays small
    sock.connect(("127.0.0.1", port))
    ws = await connect(f"ws://127.0.0.1:{port}", sock=sock, max_queue=1, ping_interval=None)
    await hello_of(ws)
    return ws, sock


def test_fan_out_with_a_stalled_client():
    n, queue_size, write_limit = 2000, 8, 8192

    async def main():
        async with EmotionServer(
            port=0,
            queue_size=queue_size,
            hello=HELLO,
            write_limit=write_limit,
            stall_timeout=2.0,
            close_timeout=0.5,
        ) as server:
            uri = f"ws://127.0.0.1:{server.port}"
            healthy = await connect(uri, ping_interval=None)
            await hello_of(healthy)
            stalled, sock = await stalled_client(server.port)
            stalled_name = f"127.0.0.1:{sock.getsockname()[1]}"
            assert server.clients == 2

            seqs: list[int] = []
            progress = asyncio.Event()

            async def consume():
                async for text in healthy:
                    seqs.append(json.loads(text)["seq"])
                    progress.set()
                    if len(seqs) == n:
                        return

            consumer = asyncio.create_task(consume())
            samples = []
            for seq in range(n):
                # A healthy consumer is never more than a few hops behind (live, hops come every 0.5 s).
                while seq - len(seqs) >= queue_size // 2:
                    progress.clear()
                    await asyncio.wait_for(progress.wait(), 5)
                server.publish(emotion(seq, pad=1000))
                if seq % 50 == 0:
                    samples += [s for s in server.stats() if s.remote == stalled_name]
                await asyncio.sleep(0)
            await asyncio.wait_for(consumer, 5)

            assert seqs == list(range(n)), "the healthy client must get every message, in order"
            # The stalled client was slowed down to the point of losing messages, with bounded memory.
            assert samples and max(s.dropped for s in samples) > 0
            assert max(s.queued for s in samples) <= queue_size
            assert max(s.buffered for s in samples) <= write_limit + 2048
            assert server.dropped >= max(s.dropped for s in samples)
            assert all(s.dropped == 0 for s in server.stats() if s.remote != stalled_name)

            # It is then disconnected as too slow, and the healthy client carries on.
            async with asyncio.timeout(2.0 + 0.5 + 3):
                while server.clients > 1:
                    await asyncio.sleep(0.05)
            server.publish(emotion(n))
            assert json.loads(await healthy.recv())["seq"] == n
            await healthy.close()
            stalled.transport.abort()

    run(main())


def test_stop_does_not_hang_on_a_stalled_client():
    async def main():
        server = EmotionServer(port=0, hello=HELLO, stall_timeout=None, close_timeout=0.5)
        await server.start()
        stalled, _ = await stalled_client(server.port)
        for seq in range(500):
            server.publish(emotion(seq, pad=1000))
            await asyncio.sleep(0)
        async with asyncio.timeout(5):
            while server.stats()[0].buffered == 0:  # until the client is stalled
                await asyncio.sleep(0.01)
        started = time.monotonic()
        await asyncio.wait_for(server.stop(), 5)
        assert time.monotonic() - started < 2
        assert server.clients == 0
        stalled.transport.abort()

    run(main())


def test_slow_client_skips_to_the_latest_messages():
    async def main():
        async with EmotionServer(port=0, queue_size=4, hello=HELLO, stall_timeout=None) as server:
            slow, _ = await stalled_client(server.port)
            n = 500
            for seq in range(n):
                server.publish(emotion(seq, pad=1000))
                await asyncio.sleep(0)
            assert server.dropped > 0
            # Reading again, it gets what the buffers held, then a gap, then the newest messages.
            seqs = []
            while not seqs or seqs[-1] < n - 1:
                seqs.append(json.loads(await slow.recv())["seq"])
            assert seqs == sorted(set(seqs)) and len(seqs) < n
            assert seqs[-4:] == list(range(n - 4, n)), "the queue must keep the newest messages"
            await slow.close()

    run(main())


BAD_JSON = "message is not valid JSON (NaN, Infinity and out-of-range numbers are not)"


def test_commands_and_malformed_messages(caplog):
    caplog.set_level(logging.INFO)

    async def main():
        async with (
            EmotionServer(port=0, hello=HELLO) as server,
            connect(f"ws://127.0.0.1:{server.port}") as ws,
        ):
            await hello_of(ws)
            for bad, error in [
                ("not json", BAD_JSON),
                ('{"type": "ping", "id": NaN}', BAD_JSON),  # would be echoed as NaN, which browsers cannot parse
                ('{"type": "ping", "id": 1e999}', BAD_JSON),
                ('{"type": "ping", "id": [-Infinity]}', BAD_JSON),
                (b"\x00\x01", "binary messages are not supported; send JSON text"),
                ("[1, 2]", 'expected a JSON object with a string "type"'),
                ('{"type": 3}', 'expected a JSON object with a string "type"'),
                ("[" * 3000, BAD_JSON),
                ('{"type": "unsubscribe"}', "unknown message type 'unsubscribe' (supported: ping, marker, subscribe)"),
                ('{"type": "subscribe", "streams": "ch1"}', '"streams" must be a list of stream names or null (all)'),
            ]:
                await ws.send(bad)
                assert json.loads(await ws.recv()) == {"type": "error", "version": SCHEMA_VERSION, "error": error}
            await ws.send('{"type": "ping", "id": 7}')
            pong = json.loads(await ws.recv())
            assert pong["type"] == "pong" and pong["id"] == 7 and abs(pong["wall_time"] - time.time()) < 5
            server.publish(emotion(0))  # still connected and served
            assert json.loads(await ws.recv())["type"] == "emotion"

    run(main())
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_publish_threadsafe_from_another_thread():
    async def main():
        async with (
            EmotionServer(port=0, hello=HELLO) as server,
            connect(f"ws://127.0.0.1:{server.port}") as ws,
        ):
            await hello_of(ws)

            def worker():
                for seq in range(5):
                    server.publish_threadsafe(emotion(seq))

            thread = threading.Thread(target=worker)
            thread.start()
            got = [json.loads(await ws.recv())["seq"] for _ in range(5)]
            thread.join()
            assert got == [0, 1, 2, 3, 4]
        server.publish_threadsafe(emotion(5))  # after stop: dropped, no error

    run(main())


def test_port_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmotionServer(port=port, hello=HELLO)
        with pytest.raises(PortInUseError) as info:
            run(server.start())
    assert str(info.value) == f"port {port} on 127.0.0.1 is in use (try --ws-port)"
