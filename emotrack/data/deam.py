"""DEAM / MediaEval Emotion in Music (Aljanaki, Yang & Soleymani 2017), published annotation layout.

``dynamic_{valence,arousal}.csv`` (or ``valence.csv``/``arousal.csv`` as in the DEAM archive): one row per
song, ``song_id, sample_15000ms, sample_15500ms, ...``: the per-song mean rating in [-1, 1] at 2 Hz from
15 s (earlier ratings were discarded as unstable), blank after the song ends.
``static_annotations_averaged_songs_*.csv``: song-level means on a 1-9 scale.

A value "at t ms" is the label of the hop ending at t: hop ``k = t / 500 - 1`` (15000 ms -> hop 29).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from emotrack.data.clips import Clip, DataError, time_to_hop

__all__ = ["AUDIO_EXTENSIONS", "find_audio", "graded_scale", "load_deam", "read_deam_dynamic", "read_deam_static"]

AUDIO_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg")
"""Extensions tried, in order, for ``<audio_dir>/<song id>``."""

_SAMPLE_COL = re.compile(r"^sample_(\d+)ms$")


def find_audio(audio_dir: str | Path, stem: str) -> Path | None:
    """Return ``audio_dir/<stem>.<ext>`` for the first of :data:`AUDIO_EXTENSIONS` that exists."""
    for ext in AUDIO_EXTENSIONS:
        path = Path(audio_dir) / f"{stem}{ext}"
        if path.is_file():
            return path
    return None


def _first_existing(folder: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"DEAM annotations not found: {folder} has none of {', '.join(names)}")


def read_deam_dynamic(path: str | Path) -> dict[str, np.ndarray]:
    """Read one dynamic annotation CSV into ``{song_id: series on the hop grid}``.

    Hops before the first sample (the first 15 s) are ``NaN``; the series ends at the last sample.
    """
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        hops = []
        for col in header[1:]:
            match = _SAMPLE_COL.match(col)
            if not match:
                raise DataError(f"{path}: unexpected column {col!r} (want sample_<t>ms)")
            hops.append(time_to_hop(int(match[1]) / 1000.0))
        hops = np.array(hops)
        if hops.size and hops.min() < 0:
            raise DataError(f"{path}: sample times must be at least 500 ms")
        out = {}
        for row in reader:
            if not row or not row[0].strip():
                continue
            cells = [c.strip() for c in row[1 : len(hops) + 1]]
            values = np.array([float(c) if c else np.nan for c in cells], dtype=np.float32)
            valid = np.flatnonzero(np.isfinite(values))
            if valid.size == 0:
                continue
            series = np.full(hops[valid[-1]] + 1, np.nan, dtype=np.float32)
            series[hops[valid]] = values[valid]
            out[row[0].strip()] = series
    return out


def read_deam_static(annotations_dir: str | Path) -> dict[str, dict[str, float]]:
    """Read every ``static_annotations*.csv`` into ``{song_id: {column: value}}`` (1-9 scale).

    Column names are cleaned of the stray spaces in the published headers (``" valence_ max_mean"``).
    """
    out: dict[str, dict[str, float]] = {}
    for path in sorted(Path(annotations_dir).glob("static_annotations*.csv")):
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = [h.replace(" ", "") for h in next(reader)]
            for row in reader:
                if row and row[0].strip():
                    out[row[0].strip()] = {h: float(v) for h, v in zip(header[1:], row[1:], strict=False)
                                           if v.strip()}
    return out


def load_deam(annotations_dir: str | Path, audio_dir: str | Path | None = None) -> list[Clip]:
    """Load DEAM's per-song dynamic V/A (and static means), optionally with audio.

    Parameters
    ----------
    annotations_dir : path
        Folder with the dynamic (and optionally static) annotation CSVs.
    audio_dir : path, optional
        Folder of ``<song_id>.mp3`` (or .wav/.flac/.ogg). When given, only songs whose audio is found
        are returned; without it every annotated song is returned with ``audio_path=None``.

    Returns
    -------
    list of Clip
        Sorted by numeric song id; group = song. ``valence``/``arousal`` share one length (the hops
        where both are published; arousal sometimes has one sample more) and are ``NaN`` before 15 s.
        ``meta["static"]`` holds the 1-9 song-level ratings, ``meta["static_va"]`` their means mapped
        to [-1, 1] as ``(x - 5) / 4``.
    """
    ann = Path(annotations_dir).expanduser()
    valence = read_deam_dynamic(_first_existing(ann, ("dynamic_valence.csv", "valence.csv")))
    arousal = read_deam_dynamic(_first_existing(ann, ("dynamic_arousal.csv", "arousal.csv")))
    static = read_deam_static(ann)
    clips = []
    for song in sorted(set(valence) & set(arousal), key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else s)):
        audio = None
        if audio_dir is not None:
            audio = find_audio(audio_dir, song)
            if audio is None:
                continue
        v, a = valence[song], arousal[song]
        n = min(len(v), len(a))
        meta: dict = {"full_song": song.isdigit() and int(song) > 2000}
        if song in static:
            s = static[song]
            meta["static"] = s
            if "valence_mean" in s and "arousal_mean" in s:
                meta["static_va"] = ((s["valence_mean"] - 5) / 4, (s["arousal_mean"] - 5) / 4)
        clips.append(
            Clip(
                id=f"deam/{song}",
                audio_path=audio,
                group=f"deam/{song}",
                dataset="deam",
                valence=v[:n].copy(),
                arousal=a[:n].copy(),
                meta=meta,
            )
        )
    return clips


def graded_scale(annotations_dir: str | Path) -> tuple[float, float]:
    """RMS over songs of each song's mean dynamic (valence, arousal): the scale of a graded quadrant target.

    Why the RMS about 0 (not the std about the mean): a quadrant says only the signs, and the runtime's
    quadrant boundary is 0, so the targets are symmetric ``(+-sv, +-sa)``; with these magnitudes a balanced set
    of quadrant targets has the second moment of real songs' annotations (1,802 DEAM songs: 0.254 / 0.312).
    """
    clips = load_deam(annotations_dir)
    v = np.array([np.nanmean(c.valence) for c in clips if c.valence is not None and np.isfinite(c.valence).any()])
    a = np.array([np.nanmean(c.arousal) for c in clips if c.arousal is not None and np.isfinite(c.arousal).any()])
    return float(np.sqrt(np.mean(v**2))), float(np.sqrt(np.mean(a**2)))
