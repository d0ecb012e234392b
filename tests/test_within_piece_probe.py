"""The within-piece probe (``bench.accuracy.within_piece_probe``): its within-piece term and its label lag."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")  # the probe's ridge lives in the train extra

from bench.accuracy.within_piece_probe import lagged, probe  # noqa: E402


def _pieces(seed: int, n: int = 40, t: int = 60) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pieces whose label is mostly their level (feature 0, noisy within a piece) plus a small movement (feature 1)."""
    rng = np.random.default_rng(seed)
    features, labels = [], []
    for _ in range(n):
        level, move = rng.standard_normal(), np.cumsum(rng.standard_normal(t)) / 4
        features.append(np.stack([level + rng.standard_normal(t), move], axis=1))
        labels.append(np.stack([np.zeros(t), 0.5 * level + 0.1 * move], axis=1))
    return features, labels


def test_the_within_term_follows_the_movement_that_the_plain_fit_spends_on_levels() -> None:
    features, labels = _pieces(0)
    n = len(features)
    folds = [(np.setdiff1d(np.arange(n), np.arange(k, n, 5)), np.arange(k, n, 5)) for k in range(5)]
    plain = probe(features, labels, folds, alpha=1.0, within=0.0)
    weighted = probe(features, labels, folds, alpha=1.0, within=10.0)
    only = probe(features, labels, folds, alpha=1.0, within=None)
    assert plain["per_piece_pcc_arousal"] < 0.8
    assert plain["per_piece_pcc_arousal"] < weighted["per_piece_pcc_arousal"] < only["per_piece_pcc_arousal"]
    assert only["per_piece_pcc_arousal"] > 0.95
    assert plain["global_ccc_arousal"] > only["global_ccc_arousal"]  # the price: the levels


def test_lagged_pairs_each_label_with_the_features_before_it() -> None:
    x, y = np.arange(10)[:, None], np.arange(10)[:, None] + 100
    xl, yl = lagged(x, y, 2)
    assert (yl[:, 0] - xl[:, 0] == 102).all()  # the label at t with the features at t - 2
    xa, ya = lagged(x, y, -3)
    assert (ya[:, 0] - xa[:, 0] == 97).all()  # look-ahead: the features 3 hops after the label
    assert lagged(x, y, 0)[0] is x
