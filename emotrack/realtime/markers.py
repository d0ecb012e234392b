"""Marked moments ("client started singing", "track 3"): one hub for every route a marker can arrive by.

The terminal (Enter), the dashboard (a button), a WebSocket client and OSC (``/emotrack/marker s``) all call
:meth:`MarkerHub.mark`. The hub stamps wall and stream time, records the marker in the session store when one is
open, keeps it in the run's history and broadcasts it to every WebSocket client, the dashboard included.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from emotrack.realtime.messages import SCHEMA_VERSION

__all__ = ["MarkerHub", "read_terminal_markers"]

logger = logging.getLogger(__name__)

SOURCES = ("terminal", "dashboard", "websocket", "osc")


class MarkerHub:
    """Stamps, records and broadcasts markers; safe to call from any thread.

    Parameters
    ----------
    stores : list of SessionStore
        Where markers are recorded (``add_marker``; every stream's session); empty keeps them in memory only.
    broadcast : callable or None
        Sends the marker message (JSON text) to every WebSocket client.
    on_marker : callable or None
        Also called with each marker dict (the terminal view, the run's history).
    """

    def __init__(self, stores: list[Any] | None = None, broadcast: Callable[[str], None] | None = None,
                 on_marker: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.stores = list(stores or [])
        self.broadcast = broadcast
        self.on_marker = on_marker
        self.stream_time = 0.0
        """Stream time of the latest hop; the pipeline updates it."""
        self.markers: list[dict[str, Any]] = []
        self.errors = 0
        self._lock = threading.Lock()

    def mark(self, label: str, source: str) -> dict[str, Any]:
        """Record a marker at the current moment and return it (``id``, ``label``, times, ``source``)."""
        label = " ".join(str(label).split())[:200] or "mark"
        source = source if source in SOURCES else "websocket"
        wall, stream = time.time(), self.stream_time
        with self._lock:
            marker = None
            for store in self.stores:
                try:
                    stored = store.add_marker(label, wall_time=wall, stream_time=stream, source=source)
                except Exception:  # the store counts its own write errors; a marker is never lost from view
                    self.errors += 1
                    logger.exception("marker %r could not be stored", label)
                    continue
                if marker is None and stored.get("id") is not None:
                    marker = stored
            if marker is None:
                marker = {"id": len(self.markers) + 1, "label": label, "wall_time": wall, "stream_time": stream,
                          "source": source}
            self.markers.append(marker)
        if self.on_marker is not None:
            self.on_marker(marker)
        if self.broadcast is not None:
            self.broadcast(marker_json(marker))
        return marker


def marker_json(marker: dict[str, Any]) -> str:
    """The ``marker`` message every WebSocket client gets."""
    return json.dumps({"type": "marker", "version": SCHEMA_VERSION, **marker}, separators=(",", ":"),
                      allow_nan=False)


def read_terminal_markers(hub: MarkerHub, stop: threading.Event, stream: TextIO | None = None) -> threading.Thread:
    """Start a daemon thread that turns each line typed on the terminal into a marker (just Enter: "mark")."""
    stream = stream or sys.stdin

    def read() -> None:
        for line in stream:
            if stop.is_set():
                return
            hub.mark(line.strip(), "terminal")

    thread = threading.Thread(target=read, name="terminal-markers", daemon=True)
    thread.start()
    return thread
