"""A listener's own valence/arousal curve: the ``time_s,valence,arousal`` CSV, its checks and the hop grid.

The curve is what one person felt while listening (the annotation page samples it at 2 Hz, but any
increasing times are accepted). It is checked once, here, so that a bad file fails with one line naming
the problem instead of producing a personal model fitted to nothing: too short to say anything (< 20 s),
values off the [-1, 1] plane, a flat line (the page left untouched), times that go backwards, are not
numbers, or run past the end of the song.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emotrack import HOP_SECONDS
from emotrack.errors import ConfigError, OutputError

__all__ = ["HEADER", "MIN_SECONDS", "Curve", "read_curve", "write_curve"]

HEADER = ("time_s", "valence", "arousal")
MIN_SECONDS = 20.0
"""Shortest annotation accepted: under 20 s (40 labels at 2 Hz) one song says too little to adapt to."""
FLAT_STD = 1e-3
"""A curve whose valence and arousal both vary less than this is an untouched control, not an annotation."""
END_SLACK_S = 1.0
"""Times may run this far past the decoded audio (players report the end late; a trailing partial hop)."""


@dataclass
class Curve:
    """An annotation: ``times`` (s, increasing) and ``va`` ``[n, 2]`` in [-1, 1]."""

    times: np.ndarray
    va: np.ndarray

    @property
    def span_s(self) -> float:
        return float(self.times[-1] - self.times[0]) if len(self.times) else 0.0

    def check(self, source: str = "annotation", duration_s: float | None = None) -> None:
        """Raise :class:`ConfigError` (one line, naming ``source``) unless the curve can be adapted to."""
        t, va = self.times, self.va
        if len(t) < 2:
            raise ConfigError(f"{source}: needs at least two labelled rows, found {len(t)}")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(va))):
            raise ConfigError(f"{source}: times and values must be finite numbers")
        if t[0] < 0:
            raise ConfigError(f"{source}: time {t[0]:g} s is negative")
        steps = np.diff(t)
        if np.any(steps <= 0):
            i = int(np.argmax(steps <= 0)) + 1
            raise ConfigError(f"{source}: times must increase, but row {i + 1} ({t[i]:g} s) follows {t[i - 1]:g} s")
        if np.any(np.abs(va) > 1.0):
            i = int(np.argmax(np.any(np.abs(va) > 1.0, axis=1)))
            raise ConfigError(f"{source}: valence/arousal must lie in [-1, 1], row {i + 1} has "
                              f"{va[i, 0]:g}, {va[i, 1]:g}")
        if self.span_s < MIN_SECONDS:
            raise ConfigError(f"{source}: annotation covers {self.span_s:.1f} s, at least {MIN_SECONDS:g} s needed")
        if va[:, 0].std() < FLAT_STD and va[:, 1].std() < FLAT_STD:
            raise ConfigError(f"{source}: the curve is flat (valence and arousal never move): nothing to adapt to")
        if duration_s is not None and t[-1] > duration_s + END_SLACK_S:
            raise ConfigError(f"{source}: times run to {t[-1]:g} s but the audio lasts {duration_s:.1f} s")

    def on_hops(self, n_hops: int, hop_s: float = HOP_SECONDS) -> tuple[np.ndarray, np.ndarray]:
        """Targets on the model's hop grid: ``([n_hops, 2], valid [n_hops] bool)``.

        Hop ``k`` is labelled at its end ``hop_s (k + 1)`` (as every data set here), by linear
        interpolation; hops outside the annotated span are not valid (not extrapolated).
        """
        t = hop_s * (np.arange(n_hops, dtype=np.float64) + 1.0)
        valid = (t >= self.times[0] - 1e-9) & (t <= self.times[-1] + 1e-9)
        targets = np.stack([np.interp(t, self.times, self.va[:, i]) for i in range(2)], axis=1)
        return targets.astype(np.float32), valid


def _number(text: str, source: str, row: int, column: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: row {row} {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{source}: row {row} {column} is {text!r}, not a finite number")
    return value


def read_curve(path: str | Path, duration_s: float | None = None) -> Curve:
    """Read and check a ``time_s,valence,arousal`` CSV (header required; blank lines skipped)."""
    path = Path(path)
    source = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except FileNotFoundError:
        raise ConfigError(f"annotation file not found: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read annotation {path}: {exc}") from None
    if not rows:
        raise ConfigError(f"{source}: empty file (expected a header {','.join(HEADER)})")
    header = [c.strip().lower() for c in rows[0]]
    if header[:3] != list(HEADER):
        raise ConfigError(f"{source}: header must be {','.join(HEADER)}, not {','.join(rows[0])}")
    values = []
    for i, row in enumerate(rows[1:], start=2):
        if len(row) < 3:
            raise ConfigError(f"{source}: row {i} has {len(row)} columns, expected 3")
        values.append([_number(row[j].strip(), source, i, HEADER[j]) for j in range(3)])
    arr = np.asarray(values, np.float64).reshape(-1, 3)
    curve = Curve(times=arr[:, 0], va=arr[:, 1:3])
    curve.check(source, duration_s)
    return curve


def write_curve(path: str | Path, times, va) -> Path:
    """Write a curve as CSV (4 decimals), atomically: a half-written annotation is never left behind."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(HEADER)
            for t, (v, a) in zip(times, va, strict=True):
                w.writerow([f"{float(t):.3f}", f"{float(v):.4f}", f"{float(a):.4f}"])
        tmp.replace(path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
