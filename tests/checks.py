"""Assertions shared by the front-end tests."""

from __future__ import annotations

import numpy as np

from emotrack.frontends import FrontEnd


def assert_causal_and_incremental(fe: FrontEnd, y: np.ndarray, change_hop: int) -> np.ndarray:
    """Noise from hop ``change_hop`` on leaves the frames of earlier hops bit-identical and changes the later
    ones, and hop-by-hop ``process`` after ``reset`` equals ``process_signal``. Returns the frames of ``y``."""
    hop = fe.hop_length
    whole = fe.process_signal(y)
    changed = y.copy()
    changed[hop * change_hop :] = np.random.default_rng(0).normal(size=len(y) - hop * change_hop).astype(np.float32)
    again = fe.process_signal(changed)
    assert np.array_equal(whole[:change_hop], again[:change_hop])  # those hops end before the change
    assert not np.allclose(whole[change_hop:], again[change_hop:])
    fe.reset()
    stepwise = np.stack([fe.process(y[i * hop : (i + 1) * hop]) for i in range(len(whole))])
    assert np.array_equal(stepwise, whole)
    return whole
