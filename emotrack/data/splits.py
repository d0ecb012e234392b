"""Train/test splits that never put one artist, piece or song on both sides.

Clips of one group share timbre, arrangement and often emotion, so a split that separates them
measures memorisation rather than generalisation; every function here checks group disjointness.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from emotrack.data.clips import Clip

__all__ = ["assert_group_disjoint", "emopia_official_split", "grouped_kfold", "holdout", "strata"]


def strata(clips: Sequence[Clip], n_bins: int = 4) -> np.ndarray:
    """Stratification label per clip: ``"q<n>"`` from the quadrant, else a mean-arousal quantile bin.

    Dynamic-only clips (VGMIDI, DEAM, PMEmo) get ``"a0" .. "a<n_bins-1>"`` from quantiles of their
    mean arousal over the dynamic-only clips; clips with neither label get ``"none"``.
    """
    labels = np.array(["none"] * len(clips), dtype=object)
    means = {}
    for i, c in enumerate(clips):
        if c.quadrant is not None:
            labels[i] = f"q{c.quadrant}"
        elif c.arousal is not None and np.isfinite(c.arousal).any():
            means[i] = float(np.nanmean(c.arousal))
    if means:
        values = np.array(list(means.values()))
        edges = np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1])
        for i, b in zip(means, np.searchsorted(edges, values, side="right"), strict=True):
            labels[i] = f"a{b}"
    return labels


def assert_group_disjoint(clips: Sequence[Clip], train_idx: np.ndarray, test_idx: np.ndarray) -> None:
    """Raise ``AssertionError`` if any group has clips in both index sets (kept under ``python -O``)."""
    shared = {clips[i].group for i in train_idx} & {clips[i].group for i in test_idx}
    if shared:
        raise AssertionError(f"{len(shared)} group(s) on both sides of a split, e.g. {sorted(shared)[:3]}")


def grouped_kfold(clips: Sequence[Clip], k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold over groups (sklearn ``StratifiedGroupKFold``, shuffled with ``seed``).

    Returns
    -------
    list of (train_idx, test_idx)
        ``k`` pairs of sorted int arrays; every clip is in exactly one test fold.
    """
    groups = np.array([c.group for c in clips])
    if len(set(groups)) < k:
        raise ValueError(f"{len(set(groups))} groups cannot fill {k} folds")
    labels = strata(clips)
    if np.unique(labels, return_counts=True)[1].max() < k:
        # Tiny subsets (CI): no stratum can fill k folds, which sklearn refuses; split by group alone.
        labels = np.zeros(len(clips), dtype=int)
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    folds = []
    for train, test in cv.split(np.zeros(len(clips)), labels, groups):
        assert_group_disjoint(clips, train, test)
        folds.append((np.sort(train), np.sort(test)))
    return folds


def holdout(clips: Sequence[Clip], frac: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Grouped, stratified train/validation split holding out about ``frac`` of the clips.

    Implemented as the first fold of a ``round(1 / frac)``-fold :func:`grouped_kfold`, so the held-out
    share is ``1 / round(1 / frac)`` (0.15 gives 1/7).

    Returns
    -------
    (train_idx, val_idx)
    """
    if not 0 < frac <= 0.5:
        raise ValueError(f"frac must be in (0, 0.5], got {frac}")
    return grouped_kfold(clips, k=max(2, round(1 / frac)), seed=seed)[0]


def emopia_official_split(clips: Sequence[Clip]) -> tuple[np.ndarray, np.ndarray]:
    """EMOPIA's official song-level split as ``(train_idx, val_idx)`` from ``meta["split"]``.

    Clips without a split (other data sets, songs absent from the split files) are left out.
    """
    split = np.array([c.meta.get("split") if c.dataset == "emopia" else None for c in clips], dtype=object)
    train, val = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    if len(train) == 0 or len(val) == 0:
        raise ValueError("no EMOPIA clips with an official train/val split")
    assert_group_disjoint(clips, train, val)
    return train, val
