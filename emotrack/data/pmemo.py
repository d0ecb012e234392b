"""PMEmo (Zhang et al., ICMR 2018), published PMEmo2019 layout: chorus clips with 2 Hz V/A in [0, 1].

Layout::

    annotations/dynamic_annotations.csv   musicId, frameTime, Arousal(mean), Valence(mean)
    annotations/static_annotations.csv    musicId, Arousal(mean), Valence(mean)     (optional)
    metadata.csv                          musicId, fileName, title, artist, ...      (optional)
    chorus/<musicId>.mp3

Ratings are mapped to [-1, 1] as ``2 x - 1``; a rating at ``frameTime`` t s labels the hop ending at t.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from emotrack.data.clips import Clip, DataError, find_dataset_dir, time_to_hop
from emotrack.data.deam import find_audio
from emotrack.data.fourq import artist_groups

__all__ = ["load_pmemo"]

DYNAMIC_CSV = Path("annotations") / "dynamic_annotations.csv"
STATIC_CSV = Path("annotations") / "static_annotations.csv"


def _column(header: list[str], want: str, path: Path) -> str:
    # Match "Arousal(mean)" and plain "arousal" alike, ignoring case and spaces.
    key = want.lower()
    for h in header:
        flat = h.replace(" ", "").lower()
        if flat in (key, f"{key}(mean)"):
            return h
    raise DataError(f"{path}: no {want} column (have {', '.join(header)})")


def _read_rows(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader), list(reader.fieldnames or [])


def _to_unit(x: float) -> float:
    return 2.0 * x - 1.0


def load_pmemo(root: str | Path) -> list[Clip]:
    """Load PMEmo songs that have both dynamic annotations and a chorus audio file.

    Parameters
    ----------
    root : path
        The PMEmo folder (``annotations/``, ``chorus/``), or a data root with a ``pmemo`` folder.

    Returns
    -------
    list of Clip
        Sorted by numeric id. Group is the artist (``metadata.csv``, merged with other data sets'
        ``artist/...`` groups) or else the song. Hops before the first rating are ``NaN``.
        ``meta["static_va"]`` holds the static ratings in [-1, 1] when published.
    """
    root = find_dataset_dir(root, "pmemo", str(DYNAMIC_CSV))
    rows, header = _read_rows(root / DYNAMIC_CSV)
    id_col, t_col = _column(header, "musicId", root / DYNAMIC_CSV), _column(header, "frameTime", root / DYNAMIC_CSV)
    a_col, v_col = _column(header, "Arousal", root / DYNAMIC_CSV), _column(header, "Valence", root / DYNAMIC_CSV)
    frames: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for r in rows:
        frames[r[id_col].strip()].append(
            (time_to_hop(float(r[t_col])), _to_unit(float(r[v_col])), _to_unit(float(r[a_col])))
        )

    static: dict[str, tuple[float, float]] = {}
    if (root / STATIC_CSV).is_file():
        srows, sheader = _read_rows(root / STATIC_CSV)
        sid, sa, sv = (_column(sheader, c, root / STATIC_CSV) for c in ("musicId", "Arousal", "Valence"))
        static = {r[sid].strip(): (_to_unit(float(r[sv])), _to_unit(float(r[sa]))) for r in srows}

    meta_rows: dict[str, dict[str, str]] = {}
    if (root / "metadata.csv").is_file():
        mrows, mheader = _read_rows(root / "metadata.csv")
        mid = _column(mheader, "musicId", root / "metadata.csv")
        meta_rows = {r[mid].strip(): r for r in mrows}
    groups = artist_groups(r["artist"] for r in meta_rows.values() if r.get("artist", "").strip())

    clips = []
    for song in sorted(frames, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else s)):
        audio = find_audio(root / "chorus", song)
        if audio is None:
            continue
        hops = np.array([f[0] for f in frames[song]])
        if hops.min() < 0:
            raise DataError(f"PMEmo {song}: frameTime below 0.5 s")
        valence = np.full(hops.max() + 1, np.nan, dtype=np.float32)
        arousal = valence.copy()
        valence[hops] = [f[1] for f in frames[song]]
        arousal[hops] = [f[2] for f in frames[song]]
        info = meta_rows.get(song, {})
        artist = info.get("artist", "").strip()
        meta: dict = {"title": info.get("title", "").strip(), "artist": artist}
        if song in static:
            meta["static_va"] = static[song]
        clips.append(
            Clip(
                id=f"pmemo/{song}",
                audio_path=audio,
                group=groups[info["artist"]] if artist else f"pmemo/{song}",
                dataset="pmemo",
                valence=valence,
                arousal=arousal,
                meta=meta,
            )
        )
    return clips
