"""The per-hop result shared by the pipeline and its outputs, and its JSON wire form.

Every 0.5 s hop produces one :class:`HopMessage`. The OSC sender reads its fields directly; the WebSocket
server sends :func:`to_json` of it. JSON always carries valence and arousal in [-1, 1]; the 0..1 option
exists only for OSC, whose consumers think in normalised sliders.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["QUADRANT_NAMES", "SCHEMA_VERSION", "HopMessage", "hello_json", "quadrant_of", "to_json"]

SCHEMA_VERSION = 2
"""JSON envelope version; bumped on incompatible changes so clients can detect a schema they don't know.
2: ``quadrant`` may be 0 (no music); ``confidence`` and ``active`` added."""

QUADRANT_NAMES = {0: "no music", 1: "happy / energetic", 2: "tense / agitated", 3: "sad / low", 4: "calm / relaxed"}
"""Plain, non-clinical words for each quadrant number, shown on screens a client or audience may see."""


@dataclass(frozen=True, slots=True)
class HopMessage:
    """One prediction, made at the end of one hop.

    Attributes
    ----------
    seq : int
        Hop number from stream start, 0-based; clients detect gaps (dropped messages) from it.
    stream_time : float
        Seconds of audio since stream start at the hop's end, ``(seq + 1) * hop_s``.
    wall_time : float
        ``time.time()`` when the message was built, to measure end-to-end delay on the receiving side.
    valence, arousal : float
        Smoothed values in [-1, 1].
    valence_raw, arousal_raw : float
        Model output before smoothing, in [-1, 1].
    quadrant : int
        Circumplex quadrant 1..4 of the *smoothed* values (see :func:`quadrant_of`), 0 when not ``active``.
    model : str
        Model id, e.g. ``"mca-0.1.0"``.
    latency_ms : dict of str to float
        Milliseconds per stage (``capture``, ``features``, ``inference``, ``smoothing``, ``total``).
    dropped_samples : int
        Audio samples lost to input overflow since stream start.
    confidence : float
        0..1, how sure the tracker is that it hears music (:mod:`emotrack.realtime.activity`).
    active : bool
        False for silence, room noise or speech: then ``quadrant`` is 0 and the smoothed values glide to 0.
    stream : str or None
        Which stream the hop belongs to when one process tracks several (``"ch1"``, ``"radio"``); None otherwise.
    """

    seq: int
    stream_time: float
    wall_time: float
    valence: float
    arousal: float
    valence_raw: float
    arousal_raw: float
    quadrant: int
    model: str
    latency_ms: dict[str, float]
    dropped_samples: int = 0
    confidence: float = 1.0
    active: bool = True
    stream: str | None = None


def quadrant_of(valence: float, arousal: float) -> int:
    """Return the circumplex quadrant of a (valence, arousal) point.

    Zero counts as positive, so every point, the origin included, has exactly one quadrant:
    Q1 ``V>=0, A>=0`` (happy / energetic), Q2 ``V<0, A>=0`` (tense / agitated), Q3 ``V<0, A<0``
    (sad / low), Q4 ``V>=0, A<0`` (calm / relaxed); see :data:`QUADRANT_NAMES`.
    """
    if arousal >= 0:
        return 1 if valence >= 0 else 2
    return 3 if valence < 0 else 4


def _num(x: float, digits: int = 6) -> float:
    # float() first: numpy scalars are not JSON serialisable. Rounding keeps messages short; the models
    # compute in float32, so digits past the sixth are noise.
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite value {x!r} cannot be sent as JSON")
    return round(x, digits)


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False)


def to_json(msg: HopMessage) -> str:
    """Encode a hop as the ``emotion`` envelope sent to WebSocket clients.

    Values stay in [-1, 1]. Floats are rounded to 6 decimals (latencies to 3, confidence to 4). NaN or infinity raises
    :class:`ValueError`: browsers' ``JSON.parse`` rejects them, so they must be caught upstream.
    """
    stream = {} if msg.stream is None else {"stream": msg.stream}
    return _dumps(
        {
            "type": "emotion",
            **stream,
            "version": SCHEMA_VERSION,
            "seq": int(msg.seq),
            "stream_time": _num(msg.stream_time),
            "wall_time": _num(msg.wall_time),
            "valence": _num(msg.valence),
            "arousal": _num(msg.arousal),
            "raw": {"valence": _num(msg.valence_raw), "arousal": _num(msg.arousal_raw)},
            "quadrant": int(msg.quadrant),
            "active": bool(msg.active),
            "confidence": _num(msg.confidence, 4),
            "model": msg.model,
            "latency_ms": {str(k): _num(v, 3) for k, v in msg.latency_ms.items()},
            "dropped_samples": int(msg.dropped_samples),
        }
    )


def hello_json(model: str, hop_s: float, sample_rate: int, smoothing: str, **extra: Any) -> str:
    """Encode the ``hello`` message sent once to each WebSocket client on connect.

    It tells a client what the stream is before the first hop arrives: the model, the hop length (to
    turn ``seq`` into time), the model's sample rate and the smoother (see ``Smoother.describe()``).

    Parameters
    ----------
    model : str
        Model id.
    hop_s : float
        Seconds between messages.
    sample_rate : int
        Sample rate the model runs at, in Hz.
    smoothing : str
        Description of the smoother.
    **extra
        More JSON-serialisable fields (e.g. ``device="..."``); they may not replace the ones above.
    """
    payload: dict[str, Any] = {
        "type": "hello",
        "version": SCHEMA_VERSION,
        "model": model,
        "hop_s": float(hop_s),
        "sample_rate": int(sample_rate),
        "smoothing": smoothing,
        "range": "-1..1",
    }
    clash = payload.keys() & extra.keys()
    if clash:
        raise ValueError(f"hello fields cannot be overridden: {', '.join(sorted(clash))}")
    return _dumps(payload | extra)
