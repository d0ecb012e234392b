"""One-off data preparation: render the MIDI sets and write a JSON clip index per data set.

Cache layout (under a user-given ``cache_dir``, never inside the repository)::

    render/<dataset>/<soundfont>-<sr>/<clip>.wav   rendered MIDI (see emotrack.data.render)
    index/<dataset>.json                            every Clip of the data set (labels, groups, paths)

Training reloads clips from the index with :func:`load_index` instead of re-parsing and re-rendering.
Run it as ``emotrack data prepare --data-root ../shared/data --cache ~/.cache/emotrack``.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emotrack.data.clips import Clip, DataError
from emotrack.data.deam import load_deam
from emotrack.data.emopia import load_emopia
from emotrack.data.fourq import load_4q
from emotrack.data.pmemo import load_pmemo
from emotrack.data.render import MODEL_SR, find_soundfont, render_clips, render_path
from emotrack.data.vgmidi import load_vgmidi

__all__ = ["DATASETS", "index_path", "load_dataset", "load_index", "prepare", "write_index"]

DATASETS = ("4q", "vgmidi", "emopia", "deam", "pmemo")
"""Data set names :func:`load_dataset` and :func:`prepare` understand."""

MIDI_DATASETS = ("vgmidi", "emopia")

INDEX_VERSION = 1


def index_path(cache_dir: str | Path, dataset: str) -> Path:
    """Location of a data set's clip index: ``<cache_dir>/index/<dataset>.json``."""
    return Path(cache_dir) / "index" / f"{dataset}.json"


def write_index(clips: Sequence[Clip], cache_dir: str | Path, dataset: str) -> Path:
    """Write clips to the data set's JSON index (atomically, so readers never see half a file)."""
    path = index_path(cache_dir, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    payload = {"version": INDEX_VERSION, "dataset": dataset, "clips": [c.to_dict() for c in clips]}
    tmp.write_text(json.dumps(payload, ensure_ascii=False, allow_nan=False), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_index(cache_dir: str | Path, dataset: str) -> list[Clip]:
    """Read clips back from :func:`write_index` output.

    Raises
    ------
    DataError
        If the index is missing or from another index version (run :func:`prepare`).
    """
    path = index_path(cache_dir, dataset)
    if not path.is_file():
        raise DataError(f"no clip index at {path}; run emotrack.data.prepare first")
    payload = json.loads(path.read_text(encoding="utf-8"))
    if payload.get("version") != INDEX_VERSION:
        raise DataError(f"{path} has index version {payload.get('version')}, expected {INDEX_VERSION}")
    return [Clip.from_dict(d) for d in payload["clips"]]


def load_dataset(name: str, data_root: str | Path) -> list[Clip]:
    """Load one data set by name from the shared data root, without rendering.

    DEAM reads ``deam_annotations/`` plus ``deam_audio/`` when that folder exists; PMEmo reads ``pmemo/``.
    """
    root = Path(data_root).expanduser()
    if name == "4q":
        return load_4q(root)
    if name == "vgmidi":
        return load_vgmidi(root)
    if name == "emopia":
        return load_emopia(root)
    if name == "deam":
        audio = root / "deam_audio"
        return load_deam(root / "deam_annotations", audio if audio.is_dir() else None)
    if name == "pmemo":
        return load_pmemo(root)
    raise DataError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")


def prepare(
    data_root: str | Path,
    cache_dir: str | Path,
    datasets: Sequence[str] = ("4q", "vgmidi", "emopia"),
    limit: int | None = None,
    *,
    soundfont: str | Path | None = None,
    sr: int = MODEL_SR,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Render the MIDI data sets once and write each data set's clip index.

    Parameters
    ----------
    data_root : path
        Folder holding the data set folders (``4q/``, ``vgmidi/``, ...).
    cache_dir : path
        Where renders and indexes go.
    datasets : sequence of str
        Names from :data:`DATASETS`.
    limit : int, optional
        Keep only the first ``limit`` clips per data set (smoke tests).
    soundfont, sr, workers, progress
        Rendering options, see :func:`emotrack.data.render.render_clips`.

    Returns
    -------
    dict
        Per data set: ``clips``, ``groups``, ``quadrants`` (counts), ``rendered`` (new files),
        ``cached`` (already present), ``seconds`` and ``index`` (path).
    """
    summary = {}
    for name in datasets:
        start = time.perf_counter()
        clips = load_dataset(name, data_root)[:limit]
        rendered = cached = 0
        if name in MIDI_DATASETS:
            font = find_soundfont(soundfont)
            cached = sum(render_path(cache_dir, c, font, sr).is_file() for c in clips)
            rendered = len(clips) - cached
            clips = render_clips(clips, cache_dir, font, sr, workers, progress)
        path = write_index(clips, cache_dir, name)
        summary[name] = {
            "clips": len(clips),
            "groups": len({c.group for c in clips}),
            "quadrants": dict(sorted(Counter(c.quadrant for c in clips if c.quadrant is not None).items())),
            "rendered": rendered,
            "cached": cached,
            "seconds": round(time.perf_counter() - start, 2),
            "index": str(path),
        }
    return summary
