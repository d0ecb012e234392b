"""4Q audio emotion data set (Panda, Malheiro & Paiva, IEEE TAFFC 2018): ~30 s clips, static quadrants.

Layout: ``4q/Q1..Q4/<song>.mp3`` plus ``panda_dataset_taffc_metadata.csv`` (UTF-8, CRLF; columns
``Song, Artist, Title, Quadrant, PQuad, ..., GenresStr, ...``). The quadrant comes from the folder.
Artists recur (up to 10 clips, some in several quadrants), so clips are grouped by artist.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from emotrack.data.clips import Clip, DataError, find_dataset_dir

__all__ = ["artist_groups", "load_4q", "normalize_artist"]

METADATA_CSV = "panda_dataset_taffc_metadata.csv"

_LEAD_SPLIT = re.compile(r"\s+(?:&|and|with|feat\.?|featuring)\s+")


def normalize_artist(name: str) -> str:
    """Canonical artist key: Unicode NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def artist_groups(names: Iterable[str]) -> dict[str, str]:
    """Map raw artist names to group keys ``"artist/<name>"``, merging billing variants.

    "Bob Marley & the Wailers" joins "Bob Marley" only when the lead name is itself an artist in
    ``names``, so duos such as "Brooks & Dunn" stay whole. This closes the leaks plain normalisation
    misses (three artists in 4Q).
    """
    names = list(names)
    norm = {n: normalize_artist(n) for n in names}
    known = set(norm.values())
    out = {}
    for raw, key in norm.items():
        lead = _LEAD_SPLIT.split(key, maxsplit=1)[0].strip()
        out[raw] = "artist/" + (lead if lead != key and lead in known else key)
    return out


def _read_metadata(path: Path) -> dict[str, dict[str, str]]:
    # utf-8-sig tolerates a BOM; newline="" lets csv handle the CRLF line ends.
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "Song" not in rows[0] or "Artist" not in rows[0]:
        raise DataError(f"{path}: expected columns Song, Artist, ...")
    return {r["Song"].strip(): r for r in rows}


def load_4q(root: str | Path) -> list[Clip]:
    """Load the 4Q clips (audio paths, quadrant, artist group); no audio is decoded.

    Parameters
    ----------
    root : path
        The ``4q`` folder, or a data root that contains it.

    Returns
    -------
    list of Clip
        Sorted by quadrant then song id; ``valence``/``arousal`` are ``None`` (static labels only).
    """
    root = find_dataset_dir(root, "4q", METADATA_CSV)
    meta = _read_metadata(root / METADATA_CSV)
    files = [(q, p) for q in range(1, 5) for p in sorted((root / f"Q{q}").glob("*.mp3"))]
    if not files:
        raise DataError(f"no audio in {root}/Q1..Q4")
    groups = artist_groups(meta[p.stem]["Artist"] for _, p in files if p.stem in meta)
    clips = []
    for q, path in files:
        row = meta.get(path.stem)
        artist = row["Artist"].strip() if row else ""
        clips.append(
            Clip(
                id=f"4q/{path.stem}",
                audio_path=path,
                group=groups[row["Artist"]] if row else f"4q/{path.stem}",
                dataset="4q",
                quadrant=q,
                meta={
                    "artist": artist,
                    "title": row["Title"].strip() if row else "",
                    "genres": row.get("GenresStr", "").strip() if row else "",
                    "moods": row.get("MoodsStrSplit", "").strip() if row else "",
                    "pquad": float(row["PQuad"]) if row and row.get("PQuad") else None,
                },
            )
        )
    return clips
