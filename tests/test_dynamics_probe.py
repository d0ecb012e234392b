"""The dynamics probe's features (``bench.accuracy.dynamics_probe``): causal, and unchanged by the input gain."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")  # the probe's ridge lives in the train extra

from bench.accuracy.dynamics_probe import causal_mean, probe, relative_levels  # noqa: E402


def test_relative_levels_ignore_the_input_gain_and_see_a_crescendo() -> None:
    rng = np.random.default_rng(0)
    quiet, loud = -40 + rng.standard_normal(80), -20 + rng.standard_normal(20)
    levels = np.concatenate([quiet, loud])  # hop levels in dB: a 20 dB crescendo at hop 80
    base = relative_levels(levels)
    np.testing.assert_allclose(relative_levels(levels + 17.0), base, atol=1e-4)  # +17 dB of gain: the same
    assert base[79, 0] < 3 and base[81, 0] > 10  # the newest level jumps above the running level at the crescendo


def test_the_features_are_causal() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 3))
    later = x.copy()
    later[30:] += 5.0  # only the future changes
    np.testing.assert_allclose(causal_mean(later, 20)[:30], causal_mean(x, 20)[:30])
    levels = rng.standard_normal(50) - 30
    changed = levels.copy()
    changed[30:] -= 10
    np.testing.assert_allclose(relative_levels(changed)[:30], relative_levels(levels)[:30])


def test_the_probe_finds_a_feature_that_carries_the_label_and_not_one_that_does_not() -> None:
    rng = np.random.default_rng(2)
    n, t = 30, 40
    curves = [np.cumsum(rng.standard_normal(t)) / 5 for _ in range(n)]
    labels = [np.stack([0.0 * c, np.tanh(c)], axis=1) for c in curves]
    folds = [(np.setdiff1d(np.arange(n), np.arange(k, n, 5)), np.arange(k, n, 5)) for k in range(5)]
    informative = probe([c[:, None] for c in curves], labels, folds, alpha=1.0)
    noise = probe([rng.standard_normal((t, 1)) for _ in range(n)], labels, folds, alpha=1.0)
    assert informative["per_piece_pcc_arousal"] > 0.9
    assert abs(noise["per_piece_pcc_arousal"]) < 0.2
