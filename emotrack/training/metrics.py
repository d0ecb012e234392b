"""The papers' metrics, computed on causal streamed predictions (spec models.md §0.4 and §5.5).

Regression (continuous V/A series): RMSE, PCC (with the 1e-8 epsilon of the DSAML code) and Lin's CCC
with population (biased) moments, each either *per song* (metric per sequence, then the mean over
songs) or *global* (all frames of all songs concatenated).

Classification (4Q quadrants): weighted precision/recall/F1 and accuracy as sklearn's
``classification_report`` computes them (SincNet-MER), plus the confusion matrix. A clip's quadrant is
derived from its streamed (valence, arousal) series by :func:`clip_quadrant`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "PCC_EPS",
    "ccc",
    "classification_metrics",
    "clip_quadrant",
    "pcc",
    "quadrant_of",
    "regression_metrics",
    "rmse",
]

PCC_EPS = 1e-8
QUADRANTS = (1, 2, 3, 4)


def rmse(p: np.ndarray, y: np.ndarray) -> float:
    p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
    return float(np.sqrt(np.mean((p - y) ** 2)))


def pcc(p: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation with ``1e-8`` added to the denominator (constant series give 0, not NaN)."""
    p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
    dp, dy = p - p.mean(), y - y.mean()
    return float((dp * dy).sum() / (np.sqrt((dp**2).sum()) * np.sqrt((dy**2).sum()) + PCC_EPS))


def ccc(p: np.ndarray, y: np.ndarray) -> float:
    """Lin's concordance correlation with population variances/covariance (as DSAML ``utils/score.py``)."""
    p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
    cov = np.mean((p - p.mean()) * (y - y.mean()))
    denom = p.var() + y.var() + (p.mean() - y.mean()) ** 2
    return float(2 * cov / denom) if denom > 0 else float("nan")


_REGRESSION = {"rmse": rmse, "pcc": pcc, "ccc": ccc}


def regression_metrics(preds: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> dict[str, dict[str, float]]:
    """RMSE/PCC/CCC for valence and arousal, per-song averaged and global.

    Parameters
    ----------
    preds, labels : sequences of ``[T_i, 2]`` arrays
        One (valence, arousal) series per song, aligned hop by hop. NaN labels (unlabelled hops) are
        dropped together with the matching predictions.

    Returns
    -------
    dict
        ``{"per_song": {"valence_rmse": ..., ...}, "global": {...}}``.
    """
    pairs = []
    for p, y in zip(preds, labels, strict=True):
        p, y = np.asarray(p, np.float64).reshape(-1, 2), np.asarray(y, np.float64).reshape(-1, 2)
        keep = ~np.isnan(y).any(axis=1)
        if keep.any():
            pairs.append((p[keep], y[keep]))
    out: dict[str, dict[str, float]] = {"per_song": {}, "global": {}}
    if not pairs:
        return out
    all_p = np.concatenate([p for p, _ in pairs])
    all_y = np.concatenate([y for _, y in pairs])
    for d, dim in enumerate(("valence", "arousal")):
        for name, fn in _REGRESSION.items():
            out["per_song"][f"{dim}_{name}"] = float(np.mean([fn(p[:, d], y[:, d]) for p, y in pairs]))
            out["global"][f"{dim}_{name}"] = fn(all_p[:, d], all_y[:, d])
    out["per_song"]["n_songs"] = len(pairs)
    out["global"]["n_frames"] = len(all_p)
    return out


def quadrant_of(va: np.ndarray) -> np.ndarray:
    """Russell quadrant 1..4 of ``[..., 2]`` (valence, arousal) points; 0 counts as positive.

    Q1 = V+A+, Q2 = V-A+, Q3 = V-A-, Q4 = V+A- (spec §0.4).
    """
    va = np.asarray(va)
    v_pos, a_pos = va[..., 0] >= 0, va[..., 1] >= 0
    return np.where(a_pos, np.where(v_pos, 1, 2), np.where(v_pos, 4, 3)).astype(int)


def clip_quadrant(va: np.ndarray, method: str = "mean") -> int:
    """One quadrant for a clip from its streamed ``[T, 2]`` predictions.

    ``"mean"`` (the project's reported number): the quadrant of the mean (valence, arousal) over all
    of the clip's hops, warm-up hops included, i.e. the summary a listener of the whole stream would
    get. This is the analogue of SincNet-MER's summing of per-chunk posteriors over a segment, since
    ``tanh(logits)`` is trained to be the expected sign. ``"vote"``: the most frequent per-hop
    quadrant (ties -> lowest quadrant number).
    """
    va = np.asarray(va, np.float64).reshape(-1, 2)
    if method == "mean":
        return int(quadrant_of(va.mean(axis=0)))
    if method == "vote":
        counts = np.bincount(quadrant_of(va), minlength=5)[1:]
        return int(np.argmax(counts) + 1)
    raise ValueError(f"unknown clip aggregation {method!r}")


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, Any]:
    """Weighted P/R/F1, accuracy, per-axis sign accuracies and the 4x4 confusion matrix (rows = truth)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    p, r, f, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=list(QUADRANTS), average="weighted", zero_division=0
    )
    # Valence is positive in Q1/Q4, arousal in Q1/Q2.
    v_true, v_pred = np.isin(y_true, (1, 4)), np.isin(y_pred, (1, 4))
    a_true, a_pred = np.isin(y_true, (1, 2)), np.isin(y_pred, (1, 2))
    return {
        "weighted_f1": float(f),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(p),
        "recall": float(r),
        "valence_sign_accuracy": float(np.mean(v_true == v_pred)),
        "arousal_sign_accuracy": float(np.mean(a_true == a_pred)),
        "n_clips": len(y_true),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=list(QUADRANTS)).tolist(),
    }
