"""VGMIDI (Ferreira & Whitehead, ISMIR 2019): video-game piano MIDI with per-measure V/A from ~30 raters.

Each ``vgmidi_raw_{1,2}.json`` maps ``pieces/pieceN`` -> {name, midi, duration (s), measures} and
``annotations/pieceN_k`` -> {valence[], arousal[], demographics...}, values in [-1, 1], one per measure.
Piece ids restart in each file, so a piece is keyed by (file, id): clip id ``vgmidi/1/piece0``, group
``vgmidi1/piece0``.

Measures are mapped to time with the MIDI file's own downbeats (pretty_midi) where their count equals the
annotated ``measures`` (~3/4 of pieces; there they differ from a constant bar length by up to 7 s, tempo
changes being common), else as the data set authors' annotation tool did: constant bar length
``duration / measures``. ``meta["bar_source"]`` says which.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from emotrack.data.clips import Clip, DataError, find_dataset_dir, hop_end_times, n_hops
from emotrack.data.render import MODEL_SR, render_clips

__all__ = ["VGMIDI_FILES", "bar_starts", "load_vgmidi", "measures_to_hops"]

VGMIDI_FILES = ("vgmidi_raw_1.json", "vgmidi_raw_2.json")

_ANNOTATION_KEY = re.compile(r"^(piece\d+)_(\d+)$")


def bar_starts(midi_path: str | Path, n_measures: int, duration: float) -> tuple[np.ndarray | None, str]:
    """Start times of the annotated bars: the MIDI's downbeats if there are exactly ``n_measures`` of them.

    Returns ``(starts, "downbeats")``, or ``(None, "constant")`` when the counts differ or the file cannot
    be read (then :func:`measures_to_hops` falls back to constant bar length ``duration / n_measures``).
    """
    import warnings

    import pretty_midi

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pretty_midi warns about meta events on non-zero tracks
            downbeats = pretty_midi.PrettyMIDI(str(midi_path)).get_downbeats()
    except Exception:  # pretty_midi/mido raise many types on damaged files; the constant grid still works
        return None, "constant"
    if len(downbeats) != n_measures or downbeats[-1] >= duration:
        return None, "constant"
    return np.asarray(downbeats, np.float64), "downbeats"


def measures_to_hops(
    values: np.ndarray, duration: float, n_measures: int | None = None, starts: np.ndarray | None = None
) -> np.ndarray:
    """Resample a per-measure series onto the 0.5 s hop grid.

    Hop ``k`` takes the value of the measure that contains the instant just before its label time
    ``t = 0.5 (k + 1)``, i.e. the measure heard at the end of the hop; hops past the last bar keep
    its value. The result is step-shaped, ``n_hops(duration)`` long. Bars start at ``starts`` (seconds,
    e.g. MIDI downbeats from :func:`bar_starts`) or, without them, every ``duration / n_measures`` s.

    Parameters
    ----------
    values : array, shape (m,)
        One value per measure; only the first ``n_measures`` are used.
    duration : float
        Piece length in seconds as annotated.
    n_measures : int, optional
        Number of measures (default ``len(values)``).
    """
    values = np.asarray(values, dtype=np.float32)
    m = len(values) if n_measures is None else int(n_measures)
    if m <= 0 or len(values) < m:
        raise ValueError(f"need {m} measure values, got {len(values)}")
    t = hop_end_times(n_hops(duration))
    if starts is None:
        idx = np.ceil(t / (duration / m) - 1e-9).astype(np.int64) - 1
    else:
        if len(starts) != m:
            raise ValueError(f"need {m} bar start times, got {len(starts)}")
        idx = np.searchsorted(np.asarray(starts, np.float64), t - 1e-9, side="left") - 1
    return values[np.clip(idx, 0, m - 1)]


def _load_file(path: Path, tag: str, midi_dir: Path) -> list[Clip]:
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    pieces, annotations = raw.get("pieces"), raw.get("annotations")
    if not isinstance(pieces, dict) or not isinstance(annotations, dict):
        raise DataError(f"{path}: expected 'pieces' and 'annotations' objects")
    by_piece: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for key, ann in annotations.items():
        match = _ANNOTATION_KEY.match(key)
        if match:
            by_piece[match[1]].append((int(match[2]), ann))
    clips = []
    for pid in sorted(pieces, key=lambda s: int(s.removeprefix("piece"))):
        piece = pieces[pid]
        duration, m = float(piece["duration"]), int(piece["measures"])
        anns = sorted(by_piece.get(pid, []), key=lambda x: x[0])
        # Series shorter than `measures` cannot be placed in time; none occur in the published files.
        anns = [(k, a) for k, a in anns if min(len(a["valence"]), len(a["arousal"])) >= m]
        if not anns:
            continue
        # A few series are one value longer than `measures`; the extra value has no bar to sit on.
        starts, bar_source = bar_starts(midi_dir / piece["midi"], m, duration)
        series = [
            (measures_to_hops(a["valence"], duration, m, starts), measures_to_hops(a["arousal"], duration, m, starts))
            for _, a in anns
        ]
        game = piece["midi"].removesuffix(".mid").split("_")
        clips.append(
            Clip(
                id=f"vgmidi/{tag}/{pid}",
                audio_path=None,
                group=f"vgmidi{tag}/{pid}",
                dataset="vgmidi",
                valence=np.mean([v for v, _ in series], axis=0).astype(np.float32),
                arousal=np.mean([a for _, a in series], axis=0).astype(np.float32),
                annotators=series,
                meta={
                    "name": piece.get("name", ""),
                    "game": game[2] if len(game) >= 4 else "",
                    "midi_path": str(midi_dir / piece["midi"]),
                    "duration": duration,
                    "measures": m,
                    "bar_seconds": duration / m,
                    "bar_source": bar_source,
                    "n_annotators": len(series),
                    "source": f"{path.name}:{pid}",
                },
            )
        )
    return clips


def load_vgmidi(
    root: str | Path,
    cache_dir: str | Path | None = None,
    *,
    soundfont: str | Path | None = None,
    sr: int = MODEL_SR,
    workers: int | None = None,
    progress: bool = True,
) -> list[Clip]:
    """Load the labelled VGMIDI pieces, rendering them to audio when ``cache_dir`` is given.

    Parameters
    ----------
    root : path
        The ``vgmidi`` folder (JSON files and ``midi/``), or a data root that contains it.
    cache_dir : path, optional
        Render cache; without it ``audio_path`` is ``None`` and ``meta["midi_path"]`` is the MIDI.
    soundfont, sr, workers, progress
        Passed to :func:`emotrack.data.render.render_clips`.

    Returns
    -------
    list of Clip
        ``valence``/``arousal`` are the mean over raters on the hop grid (``n_hops(duration)`` long;
        rendered audio runs 2-3 s longer), ``annotators`` each rater's own series. Annotations whose
        piece is absent from ``pieces`` (no duration/MIDI known) are skipped.
    """
    root = find_dataset_dir(root, "vgmidi", VGMIDI_FILES[0])
    clips = []
    for i, name in enumerate(VGMIDI_FILES, start=1):
        if (root / name).is_file():
            clips += _load_file(root / name, str(i), root / "midi")
    if cache_dir is not None:
        clips = render_clips(clips, cache_dir, soundfont, sr, workers, progress)
    return clips
