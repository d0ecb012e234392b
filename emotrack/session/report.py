"""``emotrack report``: a recorded session as an HTML or PDF report a therapist can file or share.

The report holds the session's metadata, a timeline of valence and arousal (raw faint, smoothed bold) with
markers and the no-music periods shaded, the trajectory on the valence-arousal plane, the time per quadrant
overall and per marked segment (from one marker to the next), mean and spread per segment, the periods with
no music, and the hops themselves as a CSV written beside the report.

Plots are matplotlib's, drawn on the Agg canvas without pyplot (no global figure state, no display). This
module is the only one that imports matplotlib; the live path never does.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import datetime as _dt
import html
import io
import json
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg  # the Agg canvas, explicitly: no pyplot, no display
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter

from emotrack import __version__
from emotrack.errors import ConfigError, OutputError
from emotrack.realtime.messages import QUADRANT_NAMES
from emotrack.session.read import HOP_COLUMNS, Session

__all__ = ["QUADRANT_COLOURS", "Segment", "export_csv", "no_music_periods", "plane_figure", "save_summary_png",
           "segments", "summary_figure", "timeline_figure", "write_report"]

QUADRANT_COLOURS = {0: "#b0b0b0", 1: "#e69f00", 2: "#d55e00", 3: "#0072b2", 4: "#009e73"}
"""Okabe-Ito colours (readable with colour-blindness) for no music and Q1..Q4."""

_V_COLOUR, _A_COLOUR = "#3b4cc0", "#b40426"
_QUADRANTS = (1, 2, 3, 4, 0)
_MAX_PLOT_LABEL = 24


# -- numbers -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """Hops from one marker to the next (``start < stream_time <= end``); the first one is ``"start"``.

    ``number`` is the marker's (1-based, as in the plots), None for ``"start"`` and the whole session.

    ``seconds`` is the time per quadrant (0 = no music); the means and standard deviations are of the smoothed
    values over the hops with music (None where there are none), since without music they only glide to 0.
    """

    label: str
    number: int | None
    start: float
    end: float
    hops: int
    seconds: dict[int, float]
    valence_mean: float | None
    valence_std: float | None
    arousal_mean: float | None
    arousal_std: float | None

    def share(self, quadrant: int) -> float | None:
        """Fraction of the segment's hops in ``quadrant``."""
        total = sum(self.seconds.values())
        return self.seconds[quadrant] / total if total else None


def _segment(session: Session, label: str, number: int | None, mask: np.ndarray, start: float,
             end: float) -> Segment:
    h, hop_s = session.hops, session.info.hop_s
    q = h.quadrant[mask]
    music = mask & h.active
    v, a = h.valence[music], h.arousal[music]
    v, a = v[np.isfinite(v)], a[np.isfinite(a)]

    def stat(x: np.ndarray, fn: Callable) -> float | None:
        return float(fn(x)) if len(x) else None

    return Segment(label=label, number=number, start=start, end=end, hops=int(mask.sum()),
                   seconds={k: float(np.count_nonzero(q == k)) * hop_s for k in _QUADRANTS},
                   valence_mean=stat(v, np.mean), valence_std=stat(v, np.std),
                   arousal_mean=stat(a, np.mean), arousal_std=stat(a, np.std))


def overall(session: Session) -> Segment:
    """The whole session as one segment."""
    t = session.hops.stream_time
    return _segment(session, "whole session", None, np.ones(len(t), dtype=bool), 0.0, float(t.max()) if len(t) else 0.0)


def segments(session: Session) -> list[Segment]:
    """The marked segments: ``"start"`` up to the first marker, then each marker up to the next one.

    Without markers this is one ``"start"`` segment (the whole session). A ``"start"`` of zero length (a marker
    at the very beginning) is left out.
    """
    t = session.hops.stream_time
    end = float(t.max()) if len(t) else 0.0
    bounds = [0.0, *(m.stream_time for m in session.markers)]  # markers come sorted by stream time
    labels = ["start", *(m.label for m in session.markers)]
    out = []
    for i, (label, lo) in enumerate(zip(labels, bounds, strict=True)):
        hi = bounds[i + 1] if i + 1 < len(bounds) else max(end, lo)
        mask = (t <= hi) if i == 0 else ((t > lo) & (t <= hi)) if i + 1 < len(bounds) else (t > lo)
        if i == 0 and hi <= 0 and not mask.any():
            continue
        out.append(_segment(session, label, i or None, mask, lo, hi))
    return out


def no_music_periods(session: Session) -> list[tuple[float, float]]:
    """``(from, to)`` stream times of each run of consecutive hops without music (a hop covers ``t - hop_s .. t``)."""
    h, hop_s = session.hops, session.info.hop_s
    inactive = ~h.active
    if not inactive.any():
        return []
    # a run also breaks where hops are missing (a seq gap), so no period spans audio that was not stored
    brk = np.ones(len(h), dtype=bool)
    brk[1:] = (~inactive[:-1]) | (np.diff(h.seq) != 1)
    starts = np.flatnonzero(inactive & brk)
    periods = []
    for s in starts:
        e = s
        while e + 1 < len(h) and inactive[e + 1] and h.seq[e + 1] == h.seq[e] + 1:
            e += 1
        periods.append((max(0.0, float(h.stream_time[s]) - hop_s), float(h.stream_time[e])))
    return periods


def missing_hops(session: Session) -> int:
    """Hops absent between the first and last stored one (write errors, or a killed run's last second)."""
    seq = session.hops.seq
    return int(seq[-1] - seq[0] + 1 - len(seq)) if len(seq) else 0


# -- text --------------------------------------------------------------------------------------------------


def _clock(ts: float | None) -> str:
    if ts is None:
        return "–"
    return _dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _duration(s: float) -> str:
    s = int(round(s))
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


def _at(t: float) -> str:
    """A stream time as ``m:ss.s`` or ``h:mm:ss.s`` (hops are 0.5 s apart)."""
    m, s = divmod(max(t, 0.0), 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m}:{s:04.1f}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _mean_std(m: float | None, s: float | None) -> str:
    return "–" if m is None or s is None else f"{m:+.2f} ± {s:.2f}"


def _status(session: Session) -> str:
    info = session.info
    if info.state == "recording":
        return f"still recording: this report shows the hops stored up to {_clock(info.last_wall_time)}"
    if info.state == "interrupted":
        return ("interrupted: the run stopped without closing the session (killed or crashed); hops stored up to "
                f"{_clock(info.last_wall_time)}")
    return f"ended {_clock(info.ended)}" + (f" ({info.end_reason})" if info.end_reason else "")


def _metadata(session: Session) -> list[tuple[str, str]]:
    info, h = session.info, session.hops
    total = h.latency_total_ms[np.isfinite(h.latency_total_ms)]
    rows = [
        ("session", f"{info.id} in {info.path}"),
        ("started", _clock(info.started)),
        ("ended", _status(session)),
        ("duration", f"{_duration(info.duration_s)} of audio tracked" + (f" in {info.runs} runs" if info.runs > 1
                                                                          else "")),
        ("hops", f"{info.hops} (every {info.hop_s:g} s)" + (f"; {missing_hops(session)} missing"
                                                             if missing_hops(session) else "")),
        ("markers", str(info.markers)),
        ("model", info.model or "–"),
        ("model hash", info.model_hash or "–"),
        ("device", info.device or "–"),
        ("client", info.client or "– (no pseudonym given)"),
        ("recorded with", f"emotrack {info.app_version or '?'}"),
    ]
    if len(total):
        rows.append(("latency", f"median {np.median(total):.0f} ms, 99th percentile {np.percentile(total, 99):.0f} ms"))
    if len(h):
        rows.append(("dropped audio", f"{int(h.dropped_samples.max())} samples"))
    return rows


def _segment_rows(session: Session) -> list[list[str]]:
    """The segments table: the whole session, then each marked segment (numbered by its marker)."""
    segs = [overall(session), *(segments(session) if session.markers else [])]
    return [["" if s.number is None else str(s.number), s.label, _at(s.start), _at(s.end), _at(s.end - s.start),
             *(_pct(s.share(q)) for q in _QUADRANTS),
             _mean_std(s.valence_mean, s.valence_std), _mean_std(s.arousal_mean, s.arousal_std)] for s in segs]


_SEGMENT_HEADER = ["#", "segment", "from", "to", "duration", *(QUADRANT_NAMES[q] for q in _QUADRANTS),
                   "valence mean ± sd", "arousal mean ± sd"]


# -- CSV ---------------------------------------------------------------------------------------------------


CSV_HEADER = [*HOP_COLUMNS[:3], "clock", *HOP_COLUMNS[3:8], "quadrant_name", *HOP_COLUMNS[8:], "marker"]
"""Columns of the exported CSV: the stored hop columns, the wall time as local clock time, the quadrant's name
and the labels of markers placed during the hop (``; ``-joined)."""


def export_csv(session: Session, path: str | Path) -> None:
    """Write one row per hop to ``path`` (see :data:`CSV_HEADER`)."""
    h = session.hops
    marks: dict[int, list[str]] = {}
    if len(h):
        for m in session.markers:  # a marker belongs to the hop whose audio it falls in (or the last one)
            i = min(int(np.searchsorted(h.stream_time, m.stream_time, side="left")), len(h) - 1)
            marks.setdefault(i, []).append(m.label)
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADER)
        for i in range(len(h)):
            w.writerow([
                int(h.seq[i]), f"{h.stream_time[i]:.3f}", f"{h.wall_time[i]:.3f}",
                _dt.datetime.fromtimestamp(h.wall_time[i]).astimezone().isoformat(timespec="milliseconds"),
                *(f"{x:.6f}" for x in (h.valence[i], h.arousal[i], h.valence_raw[i], h.arousal_raw[i])),
                int(h.quadrant[i]), QUADRANT_NAMES.get(int(h.quadrant[i]), "?"), f"{h.confidence[i]:.4f}",
                int(h.active[i]), f"{h.latency_total_ms[i]:.3f}", int(h.dropped_samples[i]),
                "; ".join(marks.get(i, [])),
            ])


# -- plots -------------------------------------------------------------------------------------------------


def _plain(text: str) -> str:
    """User text safe for matplotlib, which would read ``$...$`` as mathtext."""
    return str(text).replace("$", r"\$")


def _time_formatter(duration: float) -> FuncFormatter:
    if duration >= 3600:
        return FuncFormatter(lambda t, _: f"{int(t // 3600)}:{int(t % 3600 // 60):02d}:{int(t % 60):02d}")
    return FuncFormatter(lambda t, _: f"{int(t // 60)}:{int(t % 60):02d}")


def _gapped(seq: np.ndarray, *arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays with a NaN inserted at each seq gap, so lines don't bridge hops that were not stored."""
    gaps = np.flatnonzero(np.diff(seq) != 1) + 1
    return [np.insert(a.astype(float), gaps, np.nan) for a in arrays]


def _canvas(fig: Figure) -> Figure:
    FigureCanvasAgg(fig)
    return fig


def _draw_timeline(axes, session: Session) -> None:
    h = session.hops
    periods = no_music_periods(session)
    end = float(h.stream_time.max()) if len(h) else 1.0
    t, v, a, vr, ar = _gapped(h.seq, h.stream_time, h.valence, h.arousal, h.valence_raw, h.arousal_raw)
    for ax, name, colour, raw, smooth in ((axes[0], "valence", _V_COLOUR, vr, v),
                                          (axes[1], "arousal", _A_COLOUR, ar, a)):
        if periods:
            ax.broken_barh([(lo, hi - lo) for lo, hi in periods], (-1.1, 2.2), facecolors="#d9d9d9",
                           edgecolors="none", label="no music", zorder=0)
        ax.axhline(0, color="#888888", lw=0.6, zorder=1)
        ax.plot(t, raw, color=colour, lw=0.8, alpha=0.35, label=f"{name} (raw)", zorder=2)
        ax.plot(t, smooth, color=colour, lw=2.0, label=f"{name} (smoothed)", zorder=3)
        for m in session.markers:
            ax.axvline(m.stream_time, color="#222222", lw=0.9, ls="--", zorder=4)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlim(0, max(end, 1.0))
        ax.set_ylabel(name)
        ax.legend(loc="lower left", fontsize=7, ncol=3, framealpha=0.85)
        ax.grid(axis="y", alpha=0.3)
    few = len(session.markers) <= 15
    for i, m in enumerate(session.markers, 1):
        label = f"{i} {m.label[:_MAX_PLOT_LABEL]}{'…' if len(m.label) > _MAX_PLOT_LABEL else ''}" if few else str(i)
        axes[0].text(m.stream_time, 1.08, _plain(label), transform=axes[0].get_xaxis_transform(), rotation=25,
                     ha="left", va="bottom", fontsize=8, clip_on=False)
    axes[1].xaxis.set_major_formatter(_time_formatter(end))
    axes[1].set_xlabel("stream time (m:ss); dashed lines: markers, grey: no music")


def _draw_plane(ax, session: Session, colorbar: bool = True) -> None:
    h = session.hops
    fig = ax.figure
    for q, (x0, y0) in {1: (0, 0), 2: (-1, 0), 3: (-1, -1), 4: (0, -1)}.items():
        ax.add_patch(Rectangle((x0, y0), 1, 1, color=QUADRANT_COLOURS[q], alpha=0.08, lw=0))
    for q, (x, y, ha, va) in {1: (0.97, 0.97, "right", "top"), 2: (-0.97, 0.97, "left", "top"),
                              3: (-0.97, -0.97, "left", "bottom"), 4: (0.97, -0.97, "right", "bottom")}.items():
        ax.text(x, y, f"Q{q} {QUADRANT_NAMES[q]}", ha=ha, va=va, fontsize=8, color=QUADRANT_COLOURS[q],
                fontweight="bold")
    ax.axhline(0, color="#888888", lw=0.6)
    ax.axvline(0, color="#888888", lw=0.6)
    music = h.active & np.isfinite(h.valence) & np.isfinite(h.arousal)
    if music.any():
        # the smoothed path through hops with music; it breaks where there was none
        v = np.where(music, h.valence, np.nan)
        a = np.where(music, h.arousal, np.nan)
        v, a = _gapped(h.seq, v, a)
        ax.plot(v, a, color="#555555", lw=0.6, alpha=0.5)
        sc = ax.scatter(h.valence[music], h.arousal[music], c=h.stream_time[music], cmap="viridis", s=10,
                        vmin=0, vmax=max(float(h.stream_time.max()), 1.0), zorder=3)
        if colorbar:
            cb = fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.04)
            cb.set_label("stream time (m:ss)")
            cb.ax.yaxis.set_major_formatter(_time_formatter(float(h.stream_time.max())))
        for i, m in enumerate(session.markers, 1):  # each marker at the first hop with music after it
            after = np.flatnonzero(music & (h.stream_time >= m.stream_time))
            if len(after):
                j = after[0]
                ax.annotate(str(i), (h.valence[j], h.arousal[j]), xytext=(4, 4), textcoords="offset points",
                            fontsize=8, fontweight="bold")
                ax.plot(h.valence[j], h.arousal[j], marker="o", ms=6, mfc="none", mec="#222222", zorder=4)
    else:
        ax.text(0, 0.1, "no music heard", ha="center", va="center", fontsize=11, color="#555555")
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("valence (negative → positive)")
    ax.set_ylabel("arousal (calm → energetic)")


def timeline_figure(session: Session) -> Figure:
    """Valence (top) and arousal (bottom) over stream time, raw faint and smoothed bold, with markers."""
    fig = _canvas(Figure(figsize=(12, 5.6), layout="constrained"))
    axes = fig.subplots(2, 1, sharex=True)
    _draw_timeline(axes, session)
    fig.suptitle(f"Session {session.info.id}: valence and arousal over time", fontsize=11)
    return fig


def plane_figure(session: Session) -> Figure:
    """The smoothed trajectory on the valence-arousal plane, coloured by time; numbered circles are markers."""
    fig = _canvas(Figure(figsize=(7, 6), layout="constrained"))
    _draw_plane(fig.subplots(), session)
    fig.suptitle(f"Session {session.info.id}: trajectory on the valence-arousal plane (hops with music)",
                 fontsize=10)
    return fig


def shares_figure(session: Session) -> Figure:
    """Time share per quadrant, overall and per marked segment, as stacked bars."""
    segs = [overall(session), *(segments(session) if session.markers else [])]
    fig = _canvas(Figure(figsize=(10, 1.3 + 0.45 * len(segs)), layout="constrained"))
    ax = fig.subplots()
    names = [_plain(s.label[:30] if s.number is None else f"{s.number} {s.label[:30]}") for s in segs]
    left = np.zeros(len(segs))
    for q in _QUADRANTS:
        share = np.array([s.share(q) or 0.0 for s in segs])
        ax.barh(names, share, left=left, color=QUADRANT_COLOURS[q], label=QUADRANT_NAMES[q])
        left += share
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{100 * x:.0f} %"))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(segs) < 4 else -0.12), ncol=5, fontsize=8,
              frameon=False)
    ax.set_title("time per quadrant", fontsize=10)
    return fig


def summary_figure(session: Session) -> Figure:
    """Timeline and plane side by side: the report's main figure (the README's picture)."""
    fig = _canvas(Figure(figsize=(12, 4.8), layout="constrained"))
    grid = fig.add_gridspec(2, 2, width_ratios=[2.4, 1])
    top = fig.add_subplot(grid[0, 0])
    _draw_timeline([top, fig.add_subplot(grid[1, 0], sharex=top)], session)
    _draw_plane(fig.add_subplot(grid[:, 1]), session)
    who = f", client {session.info.client}" if session.info.client else ""
    fig.suptitle(_plain(f"Session {session.info.id}{who}: {_duration(session.info.duration_s)}, "
                        f"{session.info.model or 'unknown model'}"), fontsize=11)
    return fig


def save_summary_png(session: Session, out: str | Path, width_px: int = 1200) -> Path:
    """Save :func:`summary_figure` as a PNG ``width_px`` wide."""
    fig = summary_figure(session)
    out = Path(out)
    fig.savefig(out, format="png", dpi=width_px / fig.get_figwidth())
    return out


def _img(fig: Figure, alt: str, dpi: int = 100) -> str:
    """An ``<img>`` with the figure embedded as a base64 PNG: the HTML stays one self-contained file."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


# -- HTML --------------------------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;max-width:1200px;margin:2em auto;
padding:0 1em}h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .7em;border-bottom:1px solid #eee;text-align:left;
vertical-align:top}th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto}.status{padding:.6em 1em;border-radius:4px;background:#eef5ee}
.status.recording,.status.interrupted{background:#fff4d6}pre{white-space:pre-wrap;background:#f8f8f8;padding:.6em}
footer{margin-top:2.5em;color:#666;font-size:.85em}@media print{body{margin:0}h2{break-after:avoid}}
"""


def _table(header: list[str], rows: list[list[str]], numeric_from: int = 99) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="n">{e(c)}</td>' if i >= numeric_from else f"<td>{e(c)}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(session: Session, csv_name: str) -> str:
    e = html.escape
    info, n = session.info, len(session.hops)
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
             f"<title>emotrack session {info.id}{e(' – ' + info.client) if info.client else ''}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>emotrack session report: session {info.id}</h1>",
             f"<p class='status {e(info.state)}'>{e(_status(session).capitalize())}.</p>",
             "<h2>Session</h2>",
             "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _metadata(session))
             + "</table>"]
    if session.notes:
        parts.append(f"<h2>Notes</h2><pre>{e(session.notes)}</pre>")
    if n == 0:
        parts.append("<h2>Data</h2><p><strong>No hops were recorded in this session</strong>, so there is nothing "
                     "to plot.</p>")
    else:
        parts += [
            "<h2>Valence and arousal over time</h2>",
            _img(timeline_figure(session), "valence and arousal timeline"),
            "<p>Faint: the model's raw values; bold: smoothed. Grey bands: no music heard (the smoothed values glide "
            "to 0 there). Dashed lines: markers, numbered as in the table below.</p>",
            "<h2>Trajectory on the valence-arousal plane</h2>",
            _img(plane_figure(session), "valence-arousal plane"),
            "<h2>Time per quadrant</h2>",
            _img(shares_figure(session), "time per quadrant"),
        ]
        whole = overall(session)
        parts.append(_table(["quadrant", "time", "share"],
                            [[QUADRANT_NAMES[q], _duration(whole.seconds[q]), _pct(whole.share(q))]
                             for q in _QUADRANTS], numeric_from=1))
        parts.append("<h2>Segments</h2><p>From one marker to the next; means and spreads (sd) are of the smoothed "
                     "values over the hops with music.</p>")
        parts.append(_table(_SEGMENT_HEADER, _segment_rows(session), numeric_from=2))
        if not session.markers:
            parts.append("<p>No markers were set, so the session is one segment.</p>")
        periods = no_music_periods(session)
        parts.append("<h2>Periods with no music</h2>")
        parts.append(_table(["from", "to", "duration"], [[_at(lo), _at(hi), _at(hi - lo)] for lo, hi in periods],
                            numeric_from=0) if periods else "<p>None: music was heard in every hop.</p>")
    parts.append("<h2>Markers</h2>")
    parts.append(_table(["#", "label", "stream time", "clock", "source"],
                        [[str(i), m.label, _at(m.stream_time), _clock(m.wall_time), m.source or "–"]
                         for i, m in enumerate(session.markers, 1)]) if session.markers else "<p>No markers.</p>")
    parts.append("<h2>Settings</h2>")
    parts.append(_table(["setting", "value"], [[k, json.dumps(v, default=str)] for k, v in
                                               sorted(session.settings.items())]) if session.settings
                 else "<p>None recorded.</p>")
    parts.append(f"<h2>Raw data</h2><p><a href='{e(urllib.parse.quote(csv_name))}'>{e(csv_name)}</a>: one row per "
                 f"hop ({n} rows): {e(', '.join(CSV_HEADER))}.</p>")
    parts.append(f"<footer>Made by emotrack {e(__version__)} on {e(_clock(_dt.datetime.now().timestamp()))}. Valence "
                 "and arousal are a model's estimate of the emotion the music expresses, not a measurement of a "
                 "person.</footer></body></html>")
    return "\n".join(parts)


# -- PDF ---------------------------------------------------------------------------------------------------


def _text_page(session: Session, csv_name: str) -> Figure:
    fig = _canvas(Figure(figsize=(8.27, 11.69)))  # A4
    y = 0.95
    fig.text(0.08, y, f"emotrack session report: session {session.info.id}", fontsize=16, fontweight="bold")
    y -= 0.035
    fig.text(0.08, y, _plain(_status(session).capitalize()), fontsize=10, color="#8a5a00"
             if session.info.state != "ended" else "#2a6a2a", wrap=True)
    y -= 0.045
    for key, value in _metadata(session):
        fig.text(0.08, y, key, fontsize=9.5, fontweight="bold")
        fig.text(0.28, y, _plain(value[:95]), fontsize=9.5)
        y -= 0.024
    if session.notes:
        y -= 0.015
        fig.text(0.08, y, "notes", fontsize=9.5, fontweight="bold")
        for line in session.notes.splitlines()[:12]:
            fig.text(0.28, y, _plain(line[:95]), fontsize=9.5)
            y -= 0.022
    y -= 0.02
    if len(session.hops):
        whole = overall(session)
        fig.text(0.08, y, "time per quadrant", fontsize=9.5, fontweight="bold")
        for q in _QUADRANTS:
            fig.text(0.28, y, f"{QUADRANT_NAMES[q]}: {_duration(whole.seconds[q])} ({_pct(whole.share(q))})",
                     fontsize=9.5)
            y -= 0.022
    else:
        fig.text(0.08, y, "No hops were recorded in this session, so there is nothing to plot.", fontsize=11)
        y -= 0.03
    y -= 0.02
    fig.text(0.08, y, _plain(f"Raw data: {csv_name} beside this file (one row per hop)."), fontsize=9.5)
    fig.text(0.08, 0.04, f"Made by emotrack {__version__} on {_clock(_dt.datetime.now().timestamp())}. Valence and "
             "arousal are a model's estimate of the emotion the music expresses, not a measurement of a person.",
             fontsize=7.5, color="#666666", wrap=True)
    return fig


def _table_pages(title: str, header: list[str], rows: list[list[str]], per_page: int = 32) -> list[Figure]:
    pages = []
    for start in range(0, max(len(rows), 1), per_page):
        fig = _canvas(Figure(figsize=(11.69, 8.27)))  # A4 landscape
        ax = fig.add_axes((0.04, 0.05, 0.92, 0.85))
        ax.axis("off")
        more = f" ({start // per_page + 1})" if len(rows) > per_page else ""
        fig.text(0.04, 0.94, title + more, fontsize=13, fontweight="bold")
        chunk = [[_plain(c) for c in r] for r in rows[start:start + per_page]] or [["–"] * len(header)]
        table = ax.table(cellText=chunk, colLabels=header, loc="upper left", cellLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        table.scale(1, 1.3)
        table.auto_set_column_width(list(range(len(header))))
        pages.append(fig)
    return pages


def _pdf(session: Session, path: Path, csv_name: str) -> None:
    from matplotlib.backends.backend_pdf import PdfPages

    meta = {"Title": f"emotrack session {session.info.id}", "Creator": f"emotrack {__version__}"}
    with PdfPages(path, metadata=meta) as pdf:
        pdf.savefig(_text_page(session, csv_name))
        if len(session.hops):
            pdf.savefig(timeline_figure(session))
            pdf.savefig(plane_figure(session))
            pdf.savefig(shares_figure(session))
            for fig in _table_pages("Segments (means and sd: smoothed values over hops with music)",
                                    _SEGMENT_HEADER, _segment_rows(session), per_page=24):
                pdf.savefig(fig)
            periods = no_music_periods(session)
            for fig in _table_pages("Periods with no music", ["from", "to", "duration"],
                                    [[_at(lo), _at(hi), _at(hi - lo)] for lo, hi in periods]):
                pdf.savefig(fig)
        if session.markers:
            for fig in _table_pages("Markers", ["#", "label", "stream time", "clock", "source"],
                                    [[str(i), m.label[:80], _at(m.stream_time), _clock(m.wall_time), m.source or "–"]
                                     for i, m in enumerate(session.markers, 1)]):
                pdf.savefig(fig)


# -- writing -----------------------------------------------------------------------------------------------


def report_paths(out: str | Path) -> tuple[Path, Path]:
    """The report and its CSV (``<stem>.csv`` beside it); :class:`ConfigError` unless ``out`` is .html or .pdf."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm", ".pdf"):
        raise ConfigError(f"a report must be .html or .pdf, not {out.name!r}")
    return out, out.with_suffix(".csv")


def write_report(session: Session, out: str | Path) -> tuple[Path, Path]:
    """Write the report (HTML or PDF by ``out``'s suffix) and ``<stem>.csv`` beside it; return both paths.

    Both go to temporary names first and are renamed at the end, so a write error (unwritable folder, a full
    disk) leaves neither a half report nor a half CSV; it raises :class:`OutputError` in one line.
    """
    out, csv_path = report_paths(out)
    tmp_out = out.with_name(f".{out.name}.part")
    tmp_csv = csv_path.with_name(f".{csv_path.name}.part")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        export_csv(session, tmp_csv)
        if out.suffix.lower() == ".pdf":
            _pdf(session, tmp_out, csv_path.name)
        else:
            tmp_out.write_text(_html(session, csv_path.name), encoding="utf-8")
        os.replace(tmp_csv, csv_path)
        os.replace(tmp_out, out)
    except OSError as exc:
        raise OutputError(f"cannot write report {out}: {exc.strerror or exc}") from None
    finally:
        for tmp in (tmp_out, tmp_csv):
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    return out, csv_path
