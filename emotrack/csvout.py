"""The per-hop CSV format shared by ``emotrack analyze`` and ``emotrack run --csv``.

Columns: ``time_s,valence,arousal`` (hop end in seconds from stream start; raw model values in
[-1, 1]) then ``valence_smoothed,arousal_smoothed,quadrant`` (0 = no music), ``confidence`` (0..1, that
music is heard), ``active`` (1 or 0) and any extra model outputs.
Values are written with 7 decimals, far below the 1e-5 agreement promised between the two commands.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

from emotrack.realtime.tracker import HopResult

__all__ = ["HEADER", "HopCsvWriter", "read_csv"]

HEADER = ["time_s", "valence", "arousal", "valence_smoothed", "arousal_smoothed", "quadrant", "confidence", "active"]


class HopCsvWriter:
    """Write hop results as rows; extra model outputs become ``name_0, name_1, ...`` columns."""

    def __init__(self, path: str | Path, extra_columns: tuple[str, ...] = ("latency_ms",)) -> None:
        self.path = Path(path)
        self._file: TextIO = self.path.open("w", newline="")
        self._writer = csv.writer(self._file)
        self._extra_columns = extra_columns
        self._header_written = False

    def write(self, r: HopResult, **extra: float) -> None:
        if not self._header_written:
            names = [f"{k}_{i}" for k, vals in r.extras.items() for i in range(len(vals))]
            self._writer.writerow(HEADER + names + [c for c in self._extra_columns if c in extra])
            self._header_written = True
        row = [f"{r.stream_time:.3f}"]
        row += [f"{x:.7f}" for x in (r.valence_raw, r.arousal_raw, r.valence, r.arousal)]
        row += [str(r.quadrant), f"{r.confidence:.4f}", "1" if r.active else "0"]
        row += [f"{x:.7f}" for vals in r.extras.values() for x in vals]
        row += [f"{extra[c]:.3f}" for c in self._extra_columns if c in extra]
        self._writer.writerow(row)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._header_written:
            csv.writer(self._file).writerow(HEADER)
        self._file.close()


def read_csv(path: str | Path) -> dict[str, list[float]]:
    """Columns of a hop CSV as float lists (for tests and evaluation)."""
    with Path(path).open(newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    return {name: [float(row[i]) for row in body] for i, name in enumerate(header)}
