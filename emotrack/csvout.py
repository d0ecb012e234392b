"""The per-hop CSV format shared by ``emotrack analyze`` and ``emotrack run --csv``.

Columns: ``time_s,valence,arousal`` (hop end in seconds from stream start; raw model values in
[-1, 1]) then ``valence_smoothed,arousal_smoothed,quadrant`` (0 = no music), ``confidence`` (0..1, that
music is heard), ``active`` (1 or 0) and any extra model outputs.
Values are written with 7 decimals, far below the 1e-5 agreement promised between the two commands.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import time
from pathlib import Path
from typing import TextIO

from emotrack.realtime.tracker import HopResult

__all__ = ["FLUSH_SECONDS", "HEADER", "HopCsvWriter", "read_csv"]

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
"""Longest time a written row may sit in the process's buffer: a killed process loses at most this much."""

HEADER = ["time_s", "valence", "arousal", "valence_smoothed", "arousal_smoothed", "quadrant", "confidence", "active"]


class HopCsvWriter:
    """Write hop results as rows; extra model outputs become ``name_0, name_1, ...`` columns.

    Rows are flushed to the OS at least every :data:`FLUSH_SECONDS` of wall time, so a SIGKILL loses at
    most that much. ``keep_going`` (live tracking) turns a write error (disk full, a yanked drive) into a
    warning logged once and a count in :attr:`errors`, so tracking and the other outputs go on; without it
    (``analyze``, where a half-written file must not pass for a whole one) the error is raised.
    """

    def __init__(self, path: str | Path, extra_columns: tuple[str, ...] = ("latency_ms",),
                 keep_going: bool = False) -> None:
        self.path = Path(path)
        self.keep_going = keep_going
        self._file: TextIO = self.path.open("w", newline="")
        self._writer = csv.writer(self._file)
        self._extra_columns = extra_columns
        self._header_written = False
        self._last_flush = time.monotonic()
        self.errors = 0
        """Rows (or flushes) that could not be written."""

    def write(self, r: HopResult, **extra: float) -> None:
        rows = []
        if not self._header_written:
            names = [f"{k}_{i}" for k, vals in r.extras.items() for i in range(len(vals))]
            rows.append(HEADER + names + [c for c in self._extra_columns if c in extra])
            self._header_written = True
        row = [f"{r.stream_time:.3f}"]
        row += [f"{x:.7f}" for x in (r.valence_raw, r.arousal_raw, r.valence, r.arousal)]
        row += [str(r.quadrant), f"{r.confidence:.4f}", "1" if r.active else "0"]
        row += [f"{x:.7f}" for vals in r.extras.values() for x in vals]
        row += [f"{extra[c]:.3f}" for c in self._extra_columns if c in extra]
        rows.append(row)
        try:
            self._writer.writerows(rows)
            if time.monotonic() - self._last_flush >= FLUSH_SECONDS:
                self.flush()
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        self.errors += 1
        if not self.keep_going:
            raise exc
        if self.errors == 1:
            logger.warning("cannot write %s (%s): rows are lost, tracking goes on", self.path, exc.strerror or exc)

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError as exc:
            self._failed(exc)
        self._last_flush = time.monotonic()

    def close(self) -> None:
        try:
            if not self._header_written:
                csv.writer(self._file).writerow(HEADER)
            self._file.close()
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._file.close()
            self._failed(exc)


def read_csv(path: str | Path) -> dict[str, list[float]]:
    """Columns of a hop CSV as float lists (for tests and evaluation)."""
    with Path(path).open(newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    return {name: [float(row[i]) for row in body] for i, name in enumerate(header)}
