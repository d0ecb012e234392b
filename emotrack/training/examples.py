"""Which clips train and evaluate a model, and their front-end frames as :class:`Example` s.

Data sets (``--datasets``, any combination; multi-task when several):

* ``4q``: audio clips, static quadrant; grouped by artist.
* ``vgmidi``: MIDI rendered into the render cache, per-measure V/A -> continuous targets per hop; grouped by piece.
* ``emopia``: MIDI rendered into the render cache, static quadrant; grouped by song, with the official
  song-level split: its *train* songs train, its *val* songs are only ever evaluated.

Quadrant clips become sign or graded targets in the trainer (``TrainConfig.targets``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emotrack.data.clips import Clip, DataError
from emotrack.training.features import FeatureCache
from emotrack.training.trainer import Example

__all__ = [
    "EMOPIA_SPLITS",
    "QUADRANT_DATASETS",
    "TRAINABLE",
    "check_datasets",
    "count_by_dataset",
    "limit_clips",
    "load_clips",
    "load_examples",
    "nonmusic_examples",
]

TRAINABLE = ("4q", "vgmidi", "emopia")
"""Data sets ``train``/``evaluate`` accept (the ones with audio or renderable MIDI here)."""
MIDI_DATASETS = ("vgmidi", "emopia")
QUADRANT_DATASETS = ("4q", "emopia")
EMOPIA_SPLITS = ("train", "val", "all")


def check_datasets(datasets: Sequence[str] | None) -> list[str]:
    """Deduplicated data set names, or a one-line :class:`DataError` for an unknown one."""
    names = list(dict.fromkeys(datasets or []))
    unknown = [n for n in names if n not in TRAINABLE]
    if unknown or not names:
        what = f"unknown data set {unknown[0]!r}" if unknown else "no data set given"
        raise DataError(f"{what}; train and evaluate take {', '.join(TRAINABLE)} (any combination)")
    return names


def strata_keys(clips: Sequence[Clip]) -> list[str]:
    """Balancing key per clip: quadrant, mean-arousal quartile (continuous), EMOPIA quadrant x split.

    EMOPIA's split comes second so that, taking strata in sorted order, even a tiny limit gets val clips.
    """
    from emotrack.data.splits import strata

    return [f"{k}/{c.meta.get('split')}" if c.dataset == "emopia" else str(k)
            for c, k in zip(clips, strata(clips), strict=True)]


def limit_clips(clips: Sequence[Clip], limit: int | None, seed: int) -> list[Clip]:
    """At most ``limit`` clips of *one* data set, balanced over its strata, seeded, in the original order.

    Why balanced: quick runs and CI still see every quadrant (4Q), every arousal level (VGMIDI) and both
    EMOPIA splits. Strata take turns until ``limit`` clips are picked.
    """
    if not limit or limit >= len(clips):
        return list(clips)
    rng = np.random.default_rng(seed)
    by_key: dict[str, list[int]] = {}
    for i, key in enumerate(strata_keys(clips)):
        by_key.setdefault(key, []).append(i)
    per = -(-limit // len(by_key))
    drawn = [[members[i] for i in rng.choice(len(members), min(per, len(members)), replace=False)]
             for members in (by_key[k] for k in sorted(by_key))]
    picked: list[int] = []
    for rank in range(per):
        picked += [d[rank] for d in drawn if rank < len(d)]
    return [clips[i] for i in sorted(picked[:limit])]


def load_clips(
    data_root: str | Path,
    datasets: Sequence[str],
    render_cache: str | Path | None = None,
    *,
    limit: int | None = None,
    seed: int = 0,
    emopia_split: str = "all",
    soundfont: str | Path | None = None,
    workers: int = 2,
    progress: bool = False,
) -> list[Clip]:
    """Clips with audio for the named data sets: each limited (per data set) *before* MIDI is rendered.

    ``emopia_split`` keeps only EMOPIA's official ``"train"`` or ``"val"`` songs (``"all"``: clips of both).
    MIDI sets need ``render_cache``; renders already there are reused.
    """
    from emotrack.data.cache import load_dataset
    from emotrack.data.render import render_clips

    names = check_datasets(datasets)
    if emopia_split not in EMOPIA_SPLITS:
        raise DataError(f"unknown EMOPIA split {emopia_split!r} (choose from {', '.join(EMOPIA_SPLITS)})")
    if not Path(data_root).expanduser().is_dir():
        raise DataError(f"data root not found: {data_root}")
    clips: list[Clip] = []
    for name in names:
        part = load_dataset(name, data_root)
        if name == "emopia":
            keep = ("train", "val") if emopia_split == "all" else (emopia_split,)
            part = [c for c in part if c.meta.get("split") in keep]
        part = limit_clips(part, limit, seed)
        if name in MIDI_DATASETS:
            if render_cache is None:
                raise DataError(f"{name} is MIDI: give a render cache folder (--render-cache)")
            part = render_clips(part, render_cache, soundfont, workers=max(1, workers), progress=progress)
        clips += [c for c in part if c.audio_path is not None]
    if not clips:
        raise DataError(f"no clips with audio in {', '.join(names)} under {data_root}")
    return clips


def load_examples(
    clips: Sequence[Any],
    cache_root: str | Path,
    workers: int = 2,
    progress: bool = True,
    frontend: str = "logmel",
    frontend_params: dict[str, Any] | None = None,
    pitch_shifts: Sequence[int] = (),
) -> tuple[list[Example], FeatureCache]:
    """Cache the front-end frames of ``clips`` and wrap them as :class:`Example` (same order).

    Quadrant clips get sign targets (``quadrant``); clips with a V/A series get continuous ``targets``,
    NaN past the labelled part (rendered MIDI runs a few seconds past its last bar). With ``pitch_shifts``,
    each recorded-audio clip (not rendered MIDI) also gets its copies shifted by those semitones as
    ``variants`` (cached like the frames).
    """
    cache = FeatureCache(cache_root, frontend, frontend_params)
    cache.build([c.audio_path for c in clips], workers=workers, progress=progress)
    recorded = [c.audio_path for c in clips if c.dataset not in MIDI_DATASETS]
    for shift in pitch_shifts:
        cache.build(recorded, workers=workers, progress=progress, shift=int(shift))
    examples = []
    for c in clips:
        frames = cache.load(c.audio_path)
        variants: tuple[np.ndarray, ...] = ()
        if pitch_shifts and c.dataset not in MIDI_DATASETS:
            variants = tuple(cache.load(c.audio_path, int(s)) for s in pitch_shifts)
            if any(v.shape != frames.shape for v in variants):
                raise DataError(f"{c.id}: a pitch-shifted copy's frames differ in shape from the clip's "
                                f"({frames.shape}); clear its -p*.npy files in {cache.dir}")
        targets = None
        if c.valence is not None:
            targets = np.full((len(frames), 2), np.nan, np.float32)
            n = min(len(frames), len(c.valence))
            targets[:n, 0], targets[:n, 1] = c.valence[:n], c.arousal[:n]
        examples.append(Example(c.id, c.group, frames, int(c.quadrant or 0), targets, variants=variants))
    return examples, cache


def nonmusic_examples(
    n: int,
    cache_root: str | Path,
    frontend: str,
    frontend_params: dict[str, Any] | None = None,
    seed: int = 0,
    workers: int = 2,
    progress: bool = True,
) -> list[Example]:
    """``n`` generated non-music clips (:func:`emotrack.data.nonmusic.make_nonmusic`) as training examples.

    Their targets are the neutral centre (0, 0) on every hop and ``music=False``; they join every training
    part (they belong to no data set, so no split can leak them) and are never validated or tested on.
    """
    from emotrack.data.nonmusic import make_nonmusic

    if n <= 0:
        return []
    made = make_nonmusic(Path(cache_root) / "nonmusic", n, seed=seed)
    cache = FeatureCache(cache_root, frontend, frontend_params)
    cache.build([p for p, _ in made], workers=workers, progress=progress)
    out = []
    for path, _ in made:
        frames = cache.load(path)
        out.append(Example(f"nonmusic/{path.stem}", "nonmusic", frames, 0, np.zeros((len(frames), 2), np.float32),
                           music=False))
    return out


def count_by_dataset(clips: Sequence[Clip], idx: Sequence[int]) -> dict[str, int]:
    """How many of ``clips[idx]`` each data set has (for logs and cards)."""
    out: dict[str, int] = {}
    for j in idx:
        out[clips[j].dataset] = out.get(clips[j].dataset, 0) + 1
    return out

