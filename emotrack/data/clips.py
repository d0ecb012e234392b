"""The clip record every data set loader returns, and the 0.5 s label grid it is aligned to.

Hop ``k`` (0-based) covers audio ``[0.5 k, 0.5 k + 0.5)`` and its label time is its *end*,
``t = 0.5 (k + 1)`` s, so a label "at t" describes the audio heard just before ``t``. Dynamic label
series are float32 arrays on that grid; ``NaN`` marks hops without a label (e.g. DEAM's first 15 s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emotrack import HOP_SECONDS
from emotrack.errors import EmotrackError

__all__ = [
    "Clip",
    "DataError",
    "hop_end_times",
    "n_hops",
    "quadrant_to_va",
    "time_to_hop",
    "va_to_quadrant",
]

_QUADRANT_SIGNS = {1: (1, 1), 2: (-1, 1), 3: (-1, -1), 4: (1, -1)}


class DataError(EmotrackError):
    """A data set folder is missing or malformed, or MIDI could not be rendered."""


def n_hops(duration: float, hop: float = HOP_SECONDS) -> int:
    """Number of hops needed to cover ``duration`` seconds (the last one may run past the end).

    A tolerance of 1 µs keeps float durations such as ``63.0000001`` from adding an extra hop.
    """
    return max(0, math.ceil(duration / hop - 1e-6))


def hop_end_times(n: int, hop: float = HOP_SECONDS) -> np.ndarray:
    """Label times ``t_k = hop * (k + 1)`` of the first ``n`` hops, in seconds."""
    return hop * (np.arange(n, dtype=np.float64) + 1.0)


def time_to_hop(t: float, hop: float = HOP_SECONDS) -> int:
    """Index of the hop whose label time (its end) is nearest to ``t`` seconds.

    A label published "at 15 s" (DEAM's ``sample_15000ms``) lands on hop 29, which covers 14.5-15 s.
    """
    return int(round(t / hop)) - 1


def quadrant_to_va(q: int) -> tuple[int, int]:
    """Return the ``(valence_sign, arousal_sign)`` of a Russell quadrant.

    Q1 (+, +) happy / energetic, Q2 (-, +) tense / agitated, Q3 (-, -) sad / low, Q4 (+, -) calm / relaxed.
    """
    try:
        return _QUADRANT_SIGNS[int(q)]
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"quadrant must be 1, 2, 3 or 4, got {q!r}") from None


def va_to_quadrant(valence: float, arousal: float) -> int:
    """Russell quadrant of a (valence, arousal) point; zero counts as positive, as Q1 is the default."""
    if valence >= 0:
        return 1 if arousal >= 0 else 4
    return 2 if arousal >= 0 else 3


def _series_to_json(x: np.ndarray | None) -> list[float | None] | None:
    if x is None:
        return None
    values = np.round(np.asarray(x, dtype=np.float64), 6)
    out: list[float | None] = values.tolist()
    for i in np.flatnonzero(~np.isfinite(values)):
        out[i] = None
    return out


def _series_from_json(x: list[float | None] | None) -> np.ndarray | None:
    if x is None:
        return None
    return np.array([np.nan if v is None else v for v in x], dtype=np.float32)


@dataclass(kw_only=True)
class Clip:
    """One labelled piece of audio from any data set.

    Attributes
    ----------
    id : str
        Unique over all data sets: ``"<dataset>/<local id>"``.
    audio_path : Path or None
        Audio file (rendered wav for MIDI sets); ``None`` when not available (annotations only,
        MIDI not rendered yet).
    group : str
        Unit that must never straddle train and test (artist, piece or song).
    dataset : str
        ``"4q"``, ``"vgmidi"``, ``"emopia"``, ``"deam"`` or ``"pmemo"``.
    quadrant : int or None
        Static Russell quadrant 1..4, where the data set gives one.
    valence, arousal : ndarray or None
        Per-hop float32 label series in [-1, 1]; index ``k`` is the label at ``t = 0.5 (k + 1)`` s,
        ``NaN`` where unlabelled.
    annotators : list of (valence, arousal) or None
        Each annotator's own series on the same grid, where the data set publishes them.
    meta : dict
        Data-set specific extras (title, artist, MIDI path, duration, split, static ratings, ...).
    """

    id: str
    audio_path: Path | None
    group: str
    dataset: str
    quadrant: int | None = None
    valence: np.ndarray | None = None
    arousal: np.ndarray | None = None
    annotators: list[tuple[np.ndarray, np.ndarray]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_labels(self) -> int:
        """Length of the dynamic label series (0 for static-only clips)."""
        return 0 if self.valence is None else len(self.valence)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``NaN`` becomes ``null``), the inverse of :meth:`from_dict`."""
        return {
            "id": self.id,
            "audio_path": None if self.audio_path is None else str(self.audio_path),
            "group": self.group,
            "dataset": self.dataset,
            "quadrant": self.quadrant,
            "valence": _series_to_json(self.valence),
            "arousal": _series_to_json(self.arousal),
            "annotators": None
            if self.annotators is None
            else [[_series_to_json(v), _series_to_json(a)] for v, a in self.annotators],
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Clip:
        """Rebuild a clip from :meth:`to_dict` output."""
        annotators = d.get("annotators")
        return cls(
            id=d["id"],
            audio_path=None if d.get("audio_path") is None else Path(d["audio_path"]),
            group=d["group"],
            dataset=d["dataset"],
            quadrant=d.get("quadrant"),
            valence=_series_from_json(d.get("valence")),
            arousal=_series_from_json(d.get("arousal")),
            annotators=None
            if annotators is None
            else [(_series_from_json(v), _series_from_json(a)) for v, a in annotators],
            meta=dict(d.get("meta") or {}),
        )


def find_dataset_dir(root: str | Path, name: str, marker: str) -> Path:
    """Return the data set folder: ``root`` itself if it holds ``marker``, else ``root/name``.

    Loaders so accept either the data set folder or the shared data root (``../shared/data``).

    Raises
    ------
    DataError
        If neither folder holds ``marker``.
    """
    root = Path(root).expanduser()
    for cand in (root, root / name):
        if (cand / marker).exists():
            return cand
    raise DataError(f"{name} data set not found: neither {root} nor {root / name} contains {marker}")
