"""Stream hops as JSON to WebSocket clients (browsers, p5.js, Unity) without letting one client slow the rest.

Each client gets a bounded queue that drops its *oldest* message when full, and its own sender task.
:meth:`EmotionServer.publish` only appends to those queues, so it never waits, and a client that stops
reading costs at most ``queue_size`` messages, ``write_limit`` bytes of write buffer and a kernel send
buffer of ``2 * send_buffer`` bytes. Clients see the gaps in ``seq``; for a dashboard the latest state
matters more than every past one.

A client that stops reading at the TCP level is noticed only once the buffers between it and the
server are full: websockets then blocks in ``send()``, and also in its keepalive ``ping()`` (which
waits for the write buffer to drain before it starts the ``ping_timeout`` clock, so keepalive alone
never drops such a client). The sender therefore closes a client whose ``send()`` has been blocked for
``stall_timeout`` seconds with code 1008 "too slow", aborting the TCP connection if the close frame
cannot be written within ``close_timeout``. The kernel send buffer is capped because Linux would
otherwise grow it up to ``net.ipv4.tcp_wmem`` (often 4 MB, hours of messages at 2 Hz) for a client
that never reads; with the defaults a stalled client is closed after roughly 100 KB (a few minutes).

Protocol: on connect the server sends the ``hello`` message and any ``greeting`` (the run's ``history``),
then one ``emotion`` message per hop (see :mod:`emotrack.realtime.messages`). A client may send
``{"type": "ping"}`` (with an optional ``"id"``, echoed back) and gets ``{"type": "pong", ...}``, or
``{"type": "marker", "label": "..."}`` to mark a moment (recorded and echoed to every client as a ``marker``
message). When one process tracks several streams, a client gets all of them unless it subscribes to some:
``?stream=ch1,ch2`` in the URL, or ``{"type": "subscribe", "streams": ["ch1"]}`` (``null``: all) at any time.
Anything else gets ``{"type": "error", ...}`` and the connection stays open.

The same port serves the dashboard page over plain HTTP(S) GET (:mod:`emotrack.realtime.dashboard`). Who may
connect is decided before the handshake by an :class:`~emotrack.realtime.access.AccessPolicy`: Host, Origin,
token, and caps on clients and handshakes; refusals are logged at info level with their reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import math
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from emotrack.errors import ConfigError, PortInUseError
from emotrack.realtime import dashboard
from emotrack.realtime.access import AccessPolicy, bound_names
from emotrack.realtime.messages import SCHEMA_VERSION

__all__ = ["ClientStats", "EmotionServer"]

logger = logging.getLogger(__name__)

MAX_COMMAND_BYTES = 4096
"""Largest message accepted from a client; commands are tiny. Bigger ones close the connection (1009)."""

STREAM_PATH = "/"
"""The one URL path of the stream (``ws://host:8765/``); the dashboard page lives at the same path over plain GET."""

MAX_LABEL = 200
"""Longest marker label kept, in characters."""

MarkerHandler = Callable[[str, str], Any]
"""``on_marker(label, source)``: records a marker and broadcasts it; called on the event loop's thread."""


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of one connected client, for monitoring and tests.

    Attributes
    ----------
    remote : str
        ``host:port`` of the client.
    queued : int
        Messages waiting in its queue (at most ``queue_size``).
    sent : int
        Messages handed to the connection, hello and replies included.
    dropped : int
        Messages dropped from its queue because it did not keep up.
    buffered : int
        Bytes in the connection's write buffer, not yet accepted by the kernel.
    """

    remote: str
    queued: int
    sent: int
    dropped: int
    buffered: int


def _reply(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "version": SCHEMA_VERSION, **fields}, separators=(",", ":"), allow_nan=False)


def _stream_query(path: str) -> frozenset[str] | None:
    """Streams named in ``?stream=a,b`` (None: all)."""
    names = [n for v in parse_qs(urlsplit(path).query).get("stream", []) for n in v.split(",") if n]
    return frozenset(names) or None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """Python's JSON reader turns ``1e999`` into infinity, which no browser's ``JSON.parse`` accepts back."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _name(ws: ServerConnection) -> str:
    host, port = ws.remote_address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _close(ws: ServerConnection, code: int, reason: str, timeout: float) -> None:
    """Close a connection, aborting it if the close frame can't be written within ``timeout``.

    ``ServerConnection.close()`` alone waits forever when the client's socket is full.
    """
    try:
        async with asyncio.timeout(timeout):
            await ws.close(code, reason)
    except TimeoutError:
        ws.transport.abort()
        await ws.wait_closed()


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class _Client:
    """Server-side state of one connection: its queue, its wake-up event and its counters."""

    def __init__(self, ws: ServerConnection, queue_size: int, streams: frozenset[str] | None = None) -> None:
        self.ws = ws
        self.name = _name(ws)
        self.streams = streams
        """Streams this client subscribed to; None: all."""
        self.queue: deque[str] = deque(maxlen=queue_size)
        self.ready = asyncio.Event()
        self.sent = 0
        self.dropped = 0

    def subscribe(self, streams: frozenset[str] | None) -> None:
        self.streams = streams

    def wants(self, stream: str | None) -> bool:
        return stream is None or self.streams is None or stream in self.streams

    def put(self, text: str) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1  # deque(maxlen) pushes the oldest out
        self.queue.append(text)
        self.ready.set()

    def stats(self) -> ClientStats:
        transport = self.ws.transport
        buffered = 0 if transport.is_closing() else transport.get_write_buffer_size()
        return ClientStats(self.name, len(self.queue), self.sent, self.dropped, buffered)


class EmotionServer:
    """WebSocket server that broadcasts per-hop JSON messages to any number of clients.

    Run it on an asyncio event loop: ``await start()`` (or ``async with``), then :meth:`publish` from
    the loop's thread or :meth:`publish_threadsafe` from any other (e.g. the pipeline's worker).

    Parameters
    ----------
    host : str
        Interface to listen on. Default ``"127.0.0.1"``: only this machine. Use ``"0.0.0.0"`` to
        serve the LAN, with a token in ``policy`` (:func:`~emotrack.realtime.access.token_policy`).
    port : int
        TCP port; 0 picks a free one (see :attr:`port`). Default 8765.
    queue_size : int
        Messages kept per client when it falls behind; the oldest is dropped first. Default 8 (4 s).
    hello : str
        Sent to each client on connect, see :func:`~emotrack.realtime.messages.hello_json`.
    stall_timeout : float or None
        Close a client (code 1008) whose ``send()`` has been blocked this long. Default 10 s;
        None never closes slow clients.
    write_limit : int
        High-water mark, in bytes, of each connection's write buffer. Default 8192, about 20 messages:
        beyond that, the queue's drop-oldest policy takes over from in-order buffering.
    send_buffer : int or None
        ``SO_SNDBUF`` of each connection, in bytes (Linux doubles it). Default 32768, ample for a few
        hundred bytes every 0.5 s even over a slow link. None leaves the kernel's autotuning on.
    ping_interval, ping_timeout : float or None
        Keepalive: ping every ``ping_interval`` s and close if no pong within ``ping_timeout`` s.
        Default 20 s each, the websockets defaults.
    close_timeout : float
        Seconds to wait for a closing handshake before aborting the TCP connection. Default 2.
    policy : AccessPolicy or None
        Who may connect. Default: Host names of ``host`` (:func:`~emotrack.realtime.access.bound_names`), no
        foreign Origin, no token.
    ssl_context : ssl.SSLContext or None
        Serve wss:// (and the page over https://) with this server context.
    greeting : callable or None
        Called with a new client's stream subscription (None: all); returns the messages sent to it right after
        ``hello`` (the run's history).
    on_marker : callable or None
        Called with ``(label, source)`` for a client's ``marker`` message; without it markers are refused.

    Raises
    ------
    ConfigError
        If ``queue_size`` < 1.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8765,
        queue_size: int = 8,
        *,
        hello: str,
        policy: AccessPolicy | None = None,
        ssl_context: ssl.SSLContext | None = None,
        greeting: Callable[[frozenset[str] | None], list[str]] | None = None,
        on_marker: MarkerHandler | None = None,
        stall_timeout: float | None = 10.0,
        write_limit: int = 8192,
        send_buffer: int | None = 32768,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 2.0,
    ) -> None:
        if queue_size < 1:
            raise ConfigError(f"WebSocket queue size must be at least 1, got {queue_size}")
        self.host = host
        self._port = port
        self.queue_size = queue_size
        self.hello = hello
        self.stall_timeout = stall_timeout
        self.write_limit = write_limit
        self.send_buffer = send_buffer
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.policy = policy or AccessPolicy(hosts=bound_names(host))
        self.ssl_context = ssl_context
        self.greeting = greeting
        self.on_marker = on_marker
        self.refused = 0
        """Handshakes refused by the policy since start."""
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[_Client] = set()
        self._dropped_gone = 0  # drops counted on clients that have since disconnected

    # Lifecycle

    async def start(self) -> None:
        """Start listening.

        Raises
        ------
        PortInUseError
            If the port is taken.
        ConfigError
            If the address can't be used for another reason (unknown host, no permission).
        """
        if self._server is not None:
            raise RuntimeError("server already started")
        try:
            self._server = await serve(
                self._handler,
                self.host,
                self._port,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                close_timeout=self.close_timeout,
                write_limit=self.write_limit,
                max_size=MAX_COMMAND_BYTES,
                process_request=self._process_request,
                ssl=self.ssl_context,
                server_header=None,  # no version banner
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(f"port {self._port} on {self.host} is in use (try --ws-port)") from None
            reason = exc.strerror or str(exc)
            raise ConfigError(f"cannot listen on {self.host}:{self._port}: {reason}") from None
        self._loop = asyncio.get_running_loop()
        logger.info("WebSocket server listening on %s://%s:%d", self.scheme[0], self.host, self.port)

    async def stop(self) -> None:
        """Close every connection (code 1001) and stop listening. Idempotent.

        Returns within about ``close_timeout``: a client that doesn't complete the closing handshake in
        time, e.g. because it stopped reading, is disconnected at the TCP level.
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.close()  # stops accepting; its own close of each connection can block on a stalled one
        await asyncio.gather(
            *(_close(c.ws, 1001, "server stopping", self.close_timeout) for c in list(self._clients))
        )
        await server.wait_closed()
        self._loop = None

    async def __aenter__(self) -> EmotionServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # Introspection

    @property
    def port(self) -> int:
        """The bound port (the real one when created with ``port=0``)."""
        if self._server is None:
            return self._port
        return self._server.sockets[0].getsockname()[1]

    @property
    def scheme(self) -> tuple[str, str]:
        """``("wss", "https")`` with TLS, else ``("ws", "http")``."""
        return ("wss", "https") if self.ssl_context is not None else ("ws", "http")

    @property
    def clients(self) -> int:
        """Number of connected clients."""
        return len(self._clients)

    @property
    def dropped(self) -> int:
        """Messages dropped for slow clients since start, disconnected clients included."""
        return self._dropped_gone + sum(c.dropped for c in self._clients)

    def stats(self) -> list[ClientStats]:
        """Return a snapshot of every connected client."""
        return [c.stats() for c in self._clients]

    # Publishing

    def publish(self, text: str, stream: str | None = None) -> None:
        """Queue a text message for every client (of ``stream``, if given, that subscribed to it). Never waits.

        Call it from the event loop's thread; from another thread use :meth:`publish_threadsafe`.
        """
        for client in self._clients:
            if client.wants(stream):
                client.put(text)

    def publish_threadsafe(self, text: str, stream: str | None = None) -> None:
        """Like :meth:`publish`, callable from any thread: it schedules ``publish(text)`` on the loop.

        Before :meth:`start` or after :meth:`stop` the message is dropped, as there is nobody to send it to.
        """
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
            loop.call_soon_threadsafe(self.publish, text, stream)

    # Admission: every request passes here before the WebSocket handshake

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        """None lets a WebSocket handshake go on; otherwise the HTTP response (a dashboard file or a refusal)."""
        headers = request.headers
        upgrade = "websocket" in headers.get("Upgrade", "").lower()
        reason = self.policy.check_host(headers.get("Host"))
        if reason is not None:
            return self._refuse(ws, HTTPStatus.MISDIRECTED_REQUEST, reason)
        if not upgrade:
            found = dashboard.page(request.path)
            if found is None:
                return self._refuse(ws, HTTPStatus.NOT_FOUND, f"no page at {request.path.partition('?')[0]!r}")
            body, content_type = found
            return Response(200, "OK", Headers({"Content-Type": content_type, "Content-Length": str(len(body)),
                                                **dashboard.SECURITY_HEADERS}), body)
        path = request.path.partition("?")[0]  # never log the query: it may hold the token
        if path != STREAM_PATH:
            return self._refuse(ws, HTTPStatus.NOT_FOUND, f"the stream is at {STREAM_PATH!r}, not {path!r}")
        capacity = self.policy.admit(len(self._clients))
        if capacity is not None:
            return self._refuse(ws, HTTPStatus(capacity[0]), capacity[1])
        reason = self.policy.check_origin(headers.get("Origin"), headers.get("Host"), self.scheme[1])
        if reason is not None:
            return self._refuse(ws, HTTPStatus.FORBIDDEN, reason)
        reason = self.policy.check_token(request.path, headers.get("Authorization"))
        if reason is not None:
            response = self._refuse(ws, HTTPStatus.UNAUTHORIZED, reason)
            response.headers["WWW-Authenticate"] = 'Bearer realm="emotrack"'
            return response
        return None

    def _refuse(self, ws: ServerConnection, status: HTTPStatus, reason: str) -> Response:
        if status != HTTPStatus.NOT_FOUND:
            self.refused += 1
        logger.info("refused %s: %d %s", _name(ws), status.value, reason)
        return ws.respond(status, f"{status.phrase}: {reason}\n")

    # Per-connection tasks

    async def _handler(self, ws: ServerConnection) -> None:
        sock = ws.transport.get_extra_info("socket")
        if self.send_buffer is not None and sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        client = _Client(ws, self.queue_size, _stream_query(ws.request.path if ws.request else ""))
        client.put(self.hello)
        for text in self.greeting(client.streams) if self.greeting is not None else ():
            client.put(text)
        self._clients.add(client)
        logger.info("WebSocket client %s connected (%d now)", client.name, len(self._clients))
        sender = asyncio.create_task(self._send_loop(client))
        try:
            await self._receive_loop(client)
        finally:
            self._clients.discard(client)
            self._dropped_gone += client.dropped
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            if ws.state is not State.CLOSED:
                # Don't leave it to websockets: its close() would wait forever on a full socket.
                await _close(ws, 1001, "", self.close_timeout)
            logger.info(
                "WebSocket client %s disconnected (code %s, %d dropped)",
                client.name,
                ws.close_code,
                client.dropped,
            )

    async def _send_loop(self, client: _Client) -> None:
        ws = client.ws
        while True:
            while not client.queue:
                client.ready.clear()
                await client.ready.wait()
            send = asyncio.ensure_future(ws.send(client.queue.popleft()))
            send.add_done_callback(_retrieve)  # if this loop is cancelled first, nobody else awaits it
            done, _ = await asyncio.wait({send}, timeout=self.stall_timeout)
            if not done:
                logger.warning(
                    "closing WebSocket client %s: not reading for %g s (too slow)",
                    client.name,
                    self.stall_timeout,
                )
                await _close(ws, 1008, "too slow", self.close_timeout)
            try:
                await send
            except ConnectionClosed:
                return
            if not done:
                return
            client.sent += 1

    async def _receive_loop(self, client: _Client) -> None:
        try:
            async for message in client.ws:
                reply = self._answer(message, self.on_marker, client.subscribe)
                if reply is not None:
                    client.put(reply)
        except ConnectionClosed:
            pass

    @staticmethod
    def _answer(message: str | bytes, on_marker: MarkerHandler | None = None,
                subscribe: Callable[[frozenset[str] | None], None] | None = None) -> str | None:
        """Reply to one client message; a bad message gets an error reply, never an exception.

        A good ``marker`` gets no reply of its own: ``on_marker`` broadcasts it to every client, the sender too.
        """
        if isinstance(message, bytes):
            return _reply("error", error="binary messages are not supported; send JSON text")
        try:
            command = json.loads(message, parse_constant=_reject_constant, parse_float=_finite_float)
        except (ValueError, RecursionError):
            return _reply("error", error="message is not valid JSON (NaN, Infinity and out-of-range numbers are not)")
        if not isinstance(command, dict) or not isinstance(command.get("type"), str):
            return _reply("error", error='expected a JSON object with a string "type"')
        if command["type"] == "ping":
            extra = {"id": command["id"]} if "id" in command else {}
            return _reply("pong", wall_time=time.time(), **extra)
        if command["type"] == "marker":
            label = command.get("label", "")
            if not isinstance(label, str):
                return _reply("error", error='a marker\'s "label" must be a string')
            if on_marker is None:
                return _reply("error", error="this server records no markers")
            source = "dashboard" if command.get("source") == "dashboard" else "websocket"
            on_marker(label[:MAX_LABEL], source)
            return None
        if command["type"] == "subscribe" and subscribe is not None:
            streams = command.get("streams")
            if streams is not None and not (isinstance(streams, list) and all(isinstance(s, str) for s in streams)):
                return _reply("error", error='"streams" must be a list of stream names or null (all)')
            subscribe(None if streams is None else frozenset(streams))
            return _reply("subscribed", streams=streams)
        return _reply("error", error=f"unknown message type {command['type']!r} (supported: ping, marker, subscribe)")
