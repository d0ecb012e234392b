"""EMOPIA 1.0 (Hung et al., ISMIR 2021): pop-piano clips transcribed to MIDI, one static quadrant each.

``label.csv`` has ``ID, 4Q, annotator`` with ids ``Q<q>_<youtube id>_<clip index>`` (YouTube ids may
contain ``_``, so the song id is everything between the first and the last underscore). Several clips
come from one song, so clips are grouped by song; the official song-level split is in
``split/{train,val}_SL.csv`` (column ``songID``); the test songs are not part of this release.
"""

from __future__ import annotations

import csv
from pathlib import Path

from emotrack.data.clips import Clip, DataError, find_dataset_dir
from emotrack.data.render import MODEL_SR, render_clips

__all__ = ["load_emopia", "parse_emopia_id"]

SPLITS = ("train", "val", "test")


def parse_emopia_id(clip_id: str) -> tuple[int, str, int]:
    """Split ``"Q1_0vLPYiPN7qY_2"`` into ``(quadrant, song_id, clip_index)``."""
    try:
        q, rest = clip_id.split("_", 1)
        song, index = rest.rsplit("_", 1)
        return int(q.removeprefix("Q")), song, int(index)
    except ValueError:
        raise DataError(f"unexpected EMOPIA clip id {clip_id!r} (want Q<q>_<song>_<n>)") from None


def _read_split(root: Path) -> dict[str, str]:
    song_split = {}
    for split in SPLITS:
        path = root / "split" / f"{split}_SL.csv"
        if not path.is_file():
            continue
        with open(path, encoding="utf-8-sig", newline="") as f:
            for row in csv.DictReader(f):
                song = row["songID"].strip()
                if song_split.setdefault(song, split) != split:
                    raise DataError(f"EMOPIA song {song} is in both {song_split[song]} and {split} splits")
    return song_split


def load_emopia(
    root: str | Path,
    cache_dir: str | Path | None = None,
    *,
    soundfont: str | Path | None = None,
    sr: int = MODEL_SR,
    workers: int | None = None,
    progress: bool = True,
) -> list[Clip]:
    """Load the EMOPIA clips with quadrant, song group and official split, rendering when asked.

    Parameters
    ----------
    root : path
        The ``emopia`` folder (``label.csv``, ``midis/``, ``split/``), or a data root containing it.
    cache_dir : path, optional
        Render cache; without it ``audio_path`` is ``None`` and ``meta["midi_path"]`` is the MIDI.
    soundfont, sr, workers, progress
        Passed to :func:`emotrack.data.render.render_clips`.

    Returns
    -------
    list of Clip
        ``meta["split"]`` is ``"train"``, ``"val"`` or ``None`` (song in no split file).
    """
    root = find_dataset_dir(root, "emopia", "label.csv")
    song_split = _read_split(root)
    clips = []
    with open(root / "label.csv", encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            cid = row["ID"].strip()
            q_name, song, index = parse_emopia_id(cid)
            q = int(row["4Q"])
            if q != q_name:
                raise DataError(f"EMOPIA {cid}: label.csv says Q{q}, the id says Q{q_name}")
            clips.append(
                Clip(
                    id=f"emopia/{cid}",
                    audio_path=None,
                    group=f"emopia/{song}",
                    dataset="emopia",
                    quadrant=q,
                    meta={
                        "song": song,
                        "clip_index": index,
                        "annotator": row.get("annotator", "").strip(),
                        "midi_path": str(root / "midis" / f"{cid}.mid"),
                        "split": song_split.get(song),
                    },
                )
            )
    if not clips:
        raise DataError(f"{root / 'label.csv'} lists no clips")
    if cache_dir is not None:
        clips = render_clips(clips, cache_dir, soundfont, sr, workers, progress)
    return clips
