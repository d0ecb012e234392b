"""The current run's hops and markers in memory, so a dashboard that connects mid-session can draw it whole.

A tablet that joins after an hour gets the hour in one ``history`` message right after ``hello``, then live hops.
Five numbers a hop in compact arrays: 12 hours (86,400 hops) take about 3 MB; older hops are dropped beyond
``max_hops``. Written by the pipeline's worker thread, read by the server's event loop, hence the lock.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Any

from emotrack.realtime.messages import SCHEMA_VERSION, HopMessage

__all__ = ["MAX_HOPS", "RunHistory"]

MAX_HOPS = 86_400
"""Hops kept: 12 hours at 0.5 s."""

_FIELDS = ("stream_time", "valence", "arousal", "valence_raw", "arousal_raw", "active")


class RunHistory:
    """Per-hop values and markers since this run started; :meth:`to_json` is the ``history`` message."""

    def __init__(self, run_id: str, hop_s: float, max_hops: int = MAX_HOPS, stream: str | None = None) -> None:
        self.run_id = run_id
        self.stream = stream
        self.hop_s = hop_s
        self._columns: dict[str, deque] = {name: deque(maxlen=max_hops) for name in _FIELDS}
        self._markers: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add_hop(self, msg: HopMessage) -> None:
        values = (msg.stream_time, msg.valence, msg.arousal, msg.valence_raw, msg.arousal_raw, int(msg.active))
        with self._lock:
            for name, value in zip(_FIELDS, values, strict=True):
                self._columns[name].append(round(value, 4) if isinstance(value, float) else value)

    def add_marker(self, marker: dict[str, Any]) -> None:
        with self._lock:
            self._markers.append(marker)

    def __len__(self) -> int:
        return len(self._columns["stream_time"])

    def to_json(self) -> str:
        with self._lock:
            payload = {name: list(column) for name, column in self._columns.items()}
            markers = list(self._markers)
        return json.dumps(
            {"type": "history", "version": SCHEMA_VERSION, "run_id": self.run_id, "hop_s": self.hop_s,
             **({} if self.stream is None else {"stream": self.stream}),
             **payload, "markers": markers},
            separators=(",", ":"), allow_nan=False,
        )
