"""The grouped CV plan and the final model's split: which clips train, select epochs and test.

4Q and VGMIDI clips go through one artist/piece-grouped stratified k-fold
(:func:`~emotrack.data.splits.grouped_kfold`); EMOPIA's train songs join every fold's training part and its
val songs are every fold's EMOPIA test set. With EMOPIA alone the CV is its official split, one "fold".
Epochs are selected on a grouped stratified holdout of ~1/7 of each training part (:func:`inner_split`),
never on test or EMOPIA-val clips. The final model trains on everything except EMOPIA val.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emotrack.data.clips import Clip, DataError

__all__ = ["cv_splits", "final_split", "inner_split", "write_splits"]


def inner_split(clips: Sequence[Clip], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Grouped, stratified ~1/7 holdout of training clips for early stopping (never test data).

    Tiny subsets (CI) hold out a larger share (down to 1/2), so every stratum can still appear in both parts.
    """
    from emotrack.data.splits import grouped_kfold, strata

    n_groups = len({c.group for c in clips})
    if n_groups < 2:
        raise DataError(f"{len(clips)} training clip(s) from {n_groups} artist/piece/song: too few for a "
                        "validation holdout (raise --limit)")
    counts = np.unique(strata(clips), return_counts=True)[1]
    return grouped_kfold(clips, k=int(min(np.clip(counts.min(), 2, 7), n_groups)), seed=seed)[0]


def _emopia_parts(clips: Sequence[Clip]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of (k-fold clips: 4Q/VGMIDI, EMOPIA train, EMOPIA val)."""
    split = np.array([c.meta.get("split") if c.dataset == "emopia" else "kfold" for c in clips], dtype=object)
    return np.flatnonzero(split == "kfold"), np.flatnonzero(split == "train"), np.flatnonzero(split == "val")


def _check_disjoint(clips: Sequence[Clip], parts: dict[str, np.ndarray]) -> None:
    """Every pair of parts is group-disjoint, and no EMOPIA val clip is in a training part."""
    from emotrack.data.splits import assert_group_disjoint

    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert_group_disjoint(clips, parts[a], parts[b])
    for part in ("train", "val"):
        if any(clips[j].dataset == "emopia" and clips[j].meta.get("split") == "val" for j in parts.get(part, [])):
            raise AssertionError(f"an EMOPIA val clip reached the {part} part")


def cv_splits(clips: Sequence[Clip], folds: int, seed: int = 0, inner_seed: int | None = None) -> list[dict]:
    """Cross-validation plan: per fold ``{"train", "val", "test"}`` index arrays into ``clips``.

    4Q/VGMIDI: ``folds``-fold artist/piece-grouped stratified CV (``seed``); EMOPIA train songs are added
    to every fold's training part, EMOPIA val songs to every fold's test part. EMOPIA alone: one fold,
    official train -> val. ``val`` is the early-stopping holdout of the training part (``inner_seed``).
    """
    from emotrack.data.splits import grouped_kfold

    kfold, em_train, em_val = _emopia_parts(clips)
    if len(kfold):
        try:
            outer = [(kfold[tr], kfold[te]) for tr, te in grouped_kfold([clips[i] for i in kfold], folds, seed)]
        except ValueError as exc:
            raise DataError(f"cannot make {folds} grouped folds: {exc} (lower --folds or raise --limit)") from None
    else:
        outer = [(np.array([], int), np.array([], int))]
    plan = []
    for tr, te in outer:
        dev = np.concatenate([tr, em_train]).astype(int)
        inner_tr, inner_va = inner_split([clips[j] for j in dev], seed if inner_seed is None else inner_seed)
        fold = {"train": np.sort(dev[inner_tr]), "val": np.sort(dev[inner_va]),
                "test": np.sort(np.concatenate([te, em_val]).astype(int))}
        _check_disjoint(clips, fold)
        plan.append(fold)
    return plan


def final_split(clips: Sequence[Clip], seed: int = 0) -> dict[str, np.ndarray]:
    """The final model's ``{"train", "val", "excluded"}``: every clip but EMOPIA val, with an inner holdout."""
    kfold, em_train, em_val = _emopia_parts(clips)
    dev = np.sort(np.concatenate([kfold, em_train]).astype(int))
    tr, va = inner_split([clips[j] for j in dev], seed)
    parts = {"train": dev[tr], "val": dev[va], "excluded": em_val}
    _check_disjoint(clips, {"train": parts["train"], "val": parts["val"]})
    return parts


def write_splits(path: Path, clips: Sequence[Clip], plan: list[dict] | None, final: dict | None) -> None:
    """Clip ids of every part (audit trail: reviewers can check group disjointness from the file)."""
    ids = lambda idx: [clips[j].id for j in idx]  # noqa: E731
    doc: dict[str, Any] = {}
    if plan is not None:
        doc["folds"] = [{k: ids(v) for k, v in f.items()} for f in plan]
    if final is not None:
        doc["final"] = {k: ids(v) for k, v in final.items()}
    path.write_text(json.dumps(doc, indent=0))

