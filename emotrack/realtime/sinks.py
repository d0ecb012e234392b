"""Where a hop goes: OSC, WebSocket, CSV, the session store, the dashboard's history, the terminal.

Every output is a :class:`Sink`: ``send(hop)``, ``close()`` and an ``errors`` count of what it lost. The live
pipeline builds its list once (:func:`emotrack.realtime.live.build_sinks`) and hands each hop to all of them
through :func:`dispatch`, which keeps one failing output from stopping the others — the madmom IOProcessor
idea: the pipeline does not know what is listening.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from emotrack.realtime.messages import HopMessage, to_json
from emotrack.realtime.tracker import HopResult

if TYPE_CHECKING:
    from emotrack.csvout import HopCsvWriter
    from emotrack.realtime.history import RunHistory
    from emotrack.realtime.osc import OscSender
    from emotrack.realtime.view import HopView
    from emotrack.realtime.websocket import EmotionServer
    from emotrack.session import SessionStore

__all__ = ["CsvSink", "ForStream", "HistorySink", "Hop", "OscSink", "SessionSink", "Sink", "ViewSink", "WebSocketSink",
           "dispatch"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Hop:
    """One hop on its way out: the tracker's result, its wire message and the latency when it was handed over."""

    result: HopResult
    message: HopMessage
    sent_ms: dict[str, float]


class Sink(Protocol):
    """An output of the live pipeline."""

    name: str

    @property
    def errors(self) -> int:
        """Hops (or writes) this output lost since start."""
        ...

    def send(self, hop: Hop) -> None:
        """Hand a hop over; must not block for long (the audio thread calls it)."""
        ...

    def close(self) -> None:
        """Flush and release; called once at the end, on every exit path."""
        ...


def dispatch(sinks: list[Sink], hop: Hop, failures: dict[str, int]) -> None:
    """Send ``hop`` to every sink; an exception in one is counted in ``failures`` and logged once, not raised."""
    for sink in sinks:
        try:
            sink.send(hop)
        except Exception:
            failures[sink.name] = failures.get(sink.name, 0) + 1
            if failures[sink.name] == 1:
                logger.exception("output %s failed; it is skipped for this hop, the others go on", sink.name)


class ForStream:
    """Routes the hops of one stream (by name; None: the only one) to ``sink``: a CSV or a session per stream."""

    def __init__(self, sink: Sink, stream: str | None) -> None:
        self.sink = sink
        self.stream = stream
        self.name = sink.name if stream is None else f"{sink.name}[{stream}]"

    @property
    def errors(self) -> int:
        return self.sink.errors

    def send(self, hop: Hop) -> None:
        if hop.message.stream == self.stream:
            self.sink.send(hop)

    def close(self) -> None:
        self.sink.close()


class OscSink:
    name = "osc"

    def __init__(self, sender: OscSender) -> None:
        self.sender = sender

    @property
    def errors(self) -> int:
        return self.sender.errors

    def send(self, hop: Hop) -> None:
        self.sender.send(hop.message)

    def close(self) -> None:
        self.sender.close()


class WebSocketSink:
    """Queues the JSON for every client; the server, on its own thread, does the sending and counts drops."""

    name = "websocket"

    def __init__(self, server: EmotionServer) -> None:
        self.server = server

    @property
    def errors(self) -> int:
        return self.server.dropped

    def send(self, hop: Hop) -> None:
        self.server.publish_threadsafe(to_json(hop.message), hop.message.stream)

    def close(self) -> None:
        """The server is stopped by the event loop that runs it."""


class CsvSink:
    name = "csv"

    def __init__(self, writer: HopCsvWriter) -> None:
        self.writer = writer

    @property
    def errors(self) -> int:
        return self.writer.errors

    def send(self, hop: Hop) -> None:
        self.writer.write(hop.result, latency_ms=hop.sent_ms["total"])

    def close(self) -> None:
        self.writer.close()


class SessionSink:
    name = "session"

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    @property
    def errors(self) -> int:
        return self.store.lost_hops

    def send(self, hop: Hop) -> None:
        self.store.add_hop(hop.message)

    def close(self) -> None:
        """The store is closed by whoever opened it, after the markers' last chance to arrive."""


class HistorySink:
    name = "history"
    errors = 0

    def __init__(self, history: RunHistory) -> None:
        self.history = history

    def send(self, hop: Hop) -> None:
        self.history.add_hop(hop.message)

    def close(self) -> None:
        pass


class ViewSink:
    name = "view"
    errors = 0

    def __init__(self, view: HopView) -> None:
        self.view = view

    def send(self, hop: Hop) -> None:
        self.view.update(hop.result, hop.sent_ms, hop.message.dropped_samples)

    def close(self) -> None:
        self.view.close()
