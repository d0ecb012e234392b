"""The live terminal view: a panel redrawn in place on a terminal, one plain line per hop otherwise.

On a terminal, :class:`HopView` draws a small rich panel that is redrawn on every hop (``rich.live.Live``, no
automatic refresh, so nothing moves between hops) and fits the terminal's width from 60 columns up: the input level
in dBFS with peak hold (the first thing to check at soundcheck), valence and arousal, the quadrant in plain words or
"no music", confidence, latency, dropped audio, connected WebSocket clients and the last marker. Below
:data:`WIDE_COLUMNS` the valence/arousal bars are dropped so that no line ever wraps. Header lines and markers are
printed above the panel. When stdout is not a terminal (a pipe, a log, the tests) every hop is one ``t=...`` line,
as it always was.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from emotrack.realtime.messages import QUADRANT_NAMES
from emotrack.realtime.tracker import HopResult

__all__ = ["HopView", "PeakMeter", "panel_lines", "state_text"]

LEVEL_FLOOR_DB = -60.0
"""Bottom of the level meter (dBFS): the activity gate's floor, below which a hop counts as silence."""

PEAK_HOLD_S = 2.0
"""Seconds of audio the peak mark stays put before it falls, long enough to read it."""

PEAK_FALL_DB_S = 15.0
"""How fast (dB per second of audio) a held peak falls back towards the level."""

WIDE_COLUMNS = 80
"""Terminals at least this wide get valence/arousal bars; narrower ones a compact panel without them."""

MIN_BAR = 10
"""Narrowest bar worth drawing; with less room it is left out rather than squeezed."""


def state_text(r: HopResult) -> str:
    """``"Q3 sad / low"`` while music is heard, ``"no music"`` otherwise."""
    return f"Q{r.quadrant} {QUADRANT_NAMES[r.quadrant]}" if r.active and r.quadrant else QUADRANT_NAMES[0]


def _bar(x: float, width: int = 21) -> str:
    """A [-1, 1] value as a bar centred on 0 (the plain line's form)."""
    pos = round((max(-1.0, min(1.0, x)) + 1) / 2 * (width - 1))
    return "".join("|" if i == width // 2 and i != pos else ("#" if i == pos else "-") for i in range(width))


class PeakMeter:
    """Peak hold for the level meter, in stream time so that it behaves the same for files and ``--fast``.

    The highest level is held for ``hold_s`` seconds, then falls at ``fall_db_s`` until a louder hop catches it.
    """

    def __init__(self, hold_s: float = PEAK_HOLD_S, fall_db_s: float = PEAK_FALL_DB_S) -> None:
        self.hold_s, self.fall_db_s = hold_s, fall_db_s
        self.peak = -math.inf
        self._held_at = -math.inf
        self._t: float | None = None

    def update(self, level_db: float, t: float) -> float:
        """Take one hop's level at stream time ``t``; return the peak to show."""
        dt = 0.0 if self._t is None else max(0.0, t - self._t)
        self._t = t
        if t - self._held_at > self.hold_s:
            self.peak -= self.fall_db_s * dt
        if not level_db < self.peak:  # also true for the first hop and for -inf == -inf
            self.peak, self._held_at = level_db, t
        return self.peak


@dataclass
class ViewState:
    """What the panel shows: the latest hop and the run's counters."""

    result: HopResult
    latency_ms: dict[str, float]
    dropped: int
    peak_db: float
    clients: int | None = None
    marker: dict[str, Any] | None = None
    typing: bool = False
    """Keys typed on this terminal become markers (and are not echoed while the panel is drawn)."""


def _db(x: float) -> str:
    return f"{x:6.1f}" if math.isfinite(x) else "  -inf"


def _fit(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` characters, ending in an ellipsis when something was cut."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _level_cells(level_db: float, peak_db: float, width: int) -> list[str]:
    """The level meter as ``width`` cells from :data:`LEVEL_FLOOR_DB` to 0 dBFS: ``#`` filled, ``|`` the peak."""
    def cell(db: float) -> int:
        if not math.isfinite(db) or db <= LEVEL_FLOOR_DB:
            return 0
        return round(min(1.0, (db - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB) * width)

    filled, peak = cell(level_db), cell(peak_db)
    cells = ["#" if i < filled else "." for i in range(width)]
    if peak > 0:
        cells[min(peak, width) - 1] = "|"
    return cells


def _centred_cells(x: float, width: int) -> list[str]:
    """A [-1, 1] value as ``width`` cells: ``#`` from the centre ``|`` to the value, ``o`` at the value."""
    centre = width // 2
    pos = round((max(-1.0, min(1.0, x)) + 1) / 2 * (width - 1))
    lo, hi = sorted((centre, pos))
    cells = ["#" if lo <= i <= hi else "." for i in range(width)]
    cells[centre] = "|"
    cells[pos] = "o"
    return cells


def _marker_text(marker: dict[str, Any] | None, typing: bool = False) -> str:
    if marker is None:
        return "none yet (type a label + Enter; keys are not echoed)" if typing else "none yet"
    return f"#{marker['id']} at {marker['stream_time']:.1f} s ({marker['source']}): {marker['label'] or 'mark'}"


def panel_lines(s: ViewState, width: int) -> list[tuple[str, list[str] | None, str]]:
    """The panel as ``(text before, bar cells or None, text after)`` rows, each at most ``width`` characters.

    Pure, so that the layout at every width is testable without a terminal; :class:`HopView` only colours it.
    """
    r, lat = s.result, s.latency_ms
    clients = "" if s.clients is None else f"  clients {s.clients}"
    wide = width >= WIDE_COLUMNS - 4
    peak = f" peak {_db(s.peak_db)}"
    rows: list[tuple[str, list[str] | None, str]] = []

    def with_bar(head: str, cells_of: Callable[[int], list[str]], tail: str = "") -> None:
        # Every bar starts at the same column and has the same width, so the three read as one scale.
        room = min(61, width - len(head) - len(peak))
        if room >= MIN_BAR:
            rows.append((head, cells_of(room), tail))
        else:
            rows.append(((head + tail.lstrip()).rstrip(), None, ""))

    if wide:
        with_bar(f"{'level':<8}{_db(r.level_db)} dBFS ", lambda n: _level_cells(r.level_db, s.peak_db, n), peak)
        with_bar(f"{'valence':<8}{r.valence:+6.2f}      ", lambda n: _centred_cells(r.valence, n))
        with_bar(f"{'arousal':<8}{r.arousal:+6.2f}      ", lambda n: _centred_cells(r.arousal, n))
        rows.append((f"{state_text(r):<20}  confidence {r.confidence:4.2f}  t {r.stream_time:.1f} s", None, ""))
        rows.append((f"latency {lat['total']:.1f} ms (features {lat['features']:.1f}, inference "
                     f"{lat['inference']:.1f})  dropped {s.dropped}{clients}", None, ""))
    else:
        with_bar(f"level {_db(r.level_db)} dBFS ", lambda n: _level_cells(r.level_db, s.peak_db, n), peak)
        rows.append((f"V {r.valence:+.2f}  A {r.arousal:+.2f}  {state_text(r)}", None, ""))
        rows.append((f"conf {r.confidence:4.2f}  t {r.stream_time:.1f} s  dropped {s.dropped}{clients}", None, ""))
        rows.append((f"latency {lat['total']:.1f} ms (feat {lat['features']:.1f} / infer {lat['inference']:.1f})",
                     None, ""))
    rows.append((f"marker {_marker_text(s.marker, s.typing)}", None, ""))
    return [(_fit(head, width), cells, tail) if cells is None else (head, cells, tail) for head, cells, tail in rows]


def _wrap_parts(text: str, width: int, sep: str = " | ") -> list[str]:
    """Header text split at ``sep`` into lines of at most ``width`` (a single longer part is left for rich to fold)."""
    lines: list[str] = []
    for part in text.split(sep):
        if lines and len(lines[-1]) + len(sep) + len(part) <= width:
            lines[-1] += sep + part
        else:
            lines.append(part)
    return lines


def _same_terminal(a: TextIO, b: TextIO) -> bool:
    """Whether two streams write to the same terminal, so that ``b``'s output may be drawn above the panel."""
    try:
        return a.isatty() and b.isatty() and os.ttyname(a.fileno()) == os.ttyname(b.fileno())
    except (OSError, ValueError, AttributeError):
        return False


class _NoEcho:
    """Turn off the terminal's echo of typed keys while the panel is drawn, and turn it back on.

    A marker label typed on the terminal (:func:`~emotrack.realtime.markers.read_terminal_markers`) would otherwise
    be echoed below the panel, with its newline, and the next redraw would start one line too low and leave
    half panels behind. Line editing still works; the marker line printed above the panel shows what was typed.
    """

    def __init__(self, view_stream: TextIO) -> None:
        self._saved = None
        stdin = sys.stdin
        if stdin is None or not _same_terminal(view_stream, stdin):
            return
        try:
            import termios

            fd = stdin.fileno()
            self._saved = (fd, termios.tcgetattr(fd))
            quiet = termios.tcgetattr(fd)
            quiet[3] &= ~(termios.ECHO | termios.ECHONL)
            termios.tcsetattr(fd, termios.TCSADRAIN, quiet)
        except (ImportError, OSError, ValueError):  # no termios (Windows) or not a real terminal after all
            self._saved = None

    @property
    def active(self) -> bool:
        return self._saved is not None

    def restore(self) -> None:
        if self._saved is not None:
            import termios

            fd, attrs = self._saved
            self._saved = None
            with contextlib.suppress(OSError, ValueError):
                termios.tcsetattr(fd, termios.TCSADRAIN, attrs)


class HopView:
    """Shows each hop: a redrawn panel on a terminal, one plain line per hop otherwise.

    Parameters
    ----------
    stream : text stream, optional
        Where to draw (default: stdout).
    live : bool, optional
        Force the panel (True) or plain lines (False); default: the panel when ``stream`` is a terminal.
    clients : callable returning int, optional
        Connected WebSocket clients (``lambda: server.clients``); also settable later as :attr:`clients`.
    """

    def __init__(self, stream: TextIO | None = None, live: bool | None = None,
                 clients: Callable[[], int] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.clients = clients
        self.peak = PeakMeter()
        self._lock = threading.RLock()
        self._state: ViewState | None = None
        self._marker: dict[str, Any] | None = None
        self._console = None
        self._live = None
        if self.live:
            from rich.console import Console

            self._console = Console(file=self.stream, force_terminal=True, highlight=False, soft_wrap=False)
            self._ascii = not (self._console.encoding or "").lower().startswith("utf")

    # -- plain lines ----------------------------------------------------------------------------------------------

    def _plain(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    @staticmethod
    def plain_line(r: HopResult, latency_ms: dict[str, float], dropped: int) -> str:
        """The one-line form of a hop (what pipes and logs get; the tests parse its ``t=`` and ``dropped``)."""
        return (
            f"t={r.stream_time:7.1f}s  V {r.valence:+.2f} [{_bar(r.valence)}]  A {r.arousal:+.2f} [{_bar(r.arousal)}]"
            f"  {state_text(r):<20} conf {r.confidence:4.2f}  latency {latency_ms['total']:6.1f} ms"
            f" (feat {latency_ms['features']:.1f} / infer {latency_ms['inference']:.1f})  dropped {dropped}"
        )

    # -- the interface the pipeline calls -------------------------------------------------------------------------

    def header(self, text: str) -> None:
        """A line about the run; on a terminal cut at its ``|`` separators to fit the width, above the panel."""
        if not self.live:
            self._plain(text)
            return
        from rich.text import Text

        with self._lock:
            for line in _wrap_parts(text, self._console.width):
                self._console.print(Text(line), overflow="fold", crop=False)

    def update(self, r: HopResult, latency_ms: dict[str, float], dropped: int) -> None:
        """Show one hop: redraw the panel, or print its line."""
        peak = self.peak.update(r.level_db, r.stream_time)
        if not self.live:
            self._plain(self.plain_line(r, latency_ms, dropped))
            return
        with self._lock:
            self._state = ViewState(r, latency_ms, dropped, peak, self._client_count(), self._marker)
            self._redraw()

    def marker(self, marker: dict) -> None:
        """A marker on its own line above the panel (or between the hop lines), and in the panel as the last one."""
        line = f"marker {marker['id']} at t={marker['stream_time']:.1f}s ({marker['source']}): {marker['label']}"
        if not self.live:
            self._plain(line)
            return
        from rich.text import Text

        with self._lock:
            self._marker = marker
            self._console.print(Text(line), overflow="fold", crop=False)
            if self._state is not None:
                self._state.marker = marker
                self._redraw()

    def close(self) -> None:
        """Stop redrawing; the last panel stays on screen above whatever is printed next."""
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None
                self._no_echo.restore()

    # -- drawing --------------------------------------------------------------------------------------------------

    def _client_count(self) -> int | None:
        try:
            return None if self.clients is None else int(self.clients())
        except Exception:  # a gone server must not break the view
            return None

    def _redraw(self) -> None:
        if self._live is None:
            from rich.live import Live

            # Started on the first hop, so headers and the dashboard address print above it as plain lines.
            self._no_echo = _NoEcho(self.stream)
            atexit.register(self._no_echo.restore)  # also when the run ends by an exception
            self._live = Live(console=self._console, auto_refresh=False, transient=False,
                              redirect_stdout=self.stream is sys.stdout,
                              redirect_stderr=_same_terminal(self.stream, sys.stderr))
            self._live.start()
        self._state.typing = self._no_echo.active
        self._live.update(self._render(self._state), refresh=True)

    def _render(self, s: ViewState):
        from rich import box
        from rich.console import Group
        from rich.panel import Panel
        from rich.text import Text

        inner = max(20, self._console.width - 4)
        lines = []
        for head, cells, tail in panel_lines(s, inner):
            text = Text(head, no_wrap=True, overflow="ellipsis")
            if cells is not None:
                text.append(self._cells(cells, head.startswith("level")))
            text.append(tail)
            text.truncate(inner, overflow="ellipsis")
            lines.append(text)
        active = s.result.active and s.result.quadrant
        title = f"emotrack  {state_text(s.result)}" if active else "emotrack  no music"
        return Panel(Group(*lines), title=_fit(title, inner), title_align="left", width=inner + 4,
                     box=box.ASCII if self._ascii else box.ROUNDED, border_style="green" if active else "dim")

    def _cells(self, cells: list[str], level: bool):
        """Colour a bar: the level meter green/yellow/red by dBFS, valence/arousal in one colour."""
        from rich.text import Text

        glyphs = {"#": "#", ".": ".", "|": "|", "o": "o"} if self._ascii else {"#": "█", ".": "·", "|": "│", "o": "●"}
        out = Text()
        n = len(cells)
        for i, c in enumerate(cells):
            if level and c in "#|":
                db = LEVEL_FLOOR_DB * (1 - (i + 1) / n)
                style = "red" if db > -6 else "yellow" if db > -18 else "green"
            else:
                style = "cyan" if c in "#o" else "dim"
            out.append(glyphs[c], style=style)
        return out
