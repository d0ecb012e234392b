"""Assertions shared by the front-end tests."""

from __future__ import annotations

import numpy as np

from emotrack.frontends import FrontEnd


def assert_causal_and_incremental(fe: FrontEnd, y: np.ndarray, change_hop: int, rtol: float = 0.0) -> np.ndarray:
    """Noise from hop ``change_hop`` on leaves the frames of earlier hops unchanged and changes the later
    ones, and hop-by-hop ``process`` after ``reset`` equals ``process_signal``. Returns the frames of ``y``.

    ``rtol`` (of the frames' largest magnitude) is for front ends whose ``process_signal`` makes larger network
    calls than one hop (musicnn), which sum in another order; 0 demands bit-identical frames.
    """
    hop = fe.hop_length
    whole = fe.process_signal(y)
    changed = y.copy()
    changed[hop * change_hop :] = np.random.default_rng(0).normal(size=len(y) - hop * change_hop).astype(np.float32)
    again = fe.process_signal(changed)
    tol = rtol * float(np.abs(whole).max())
    assert np.allclose(whole[:change_hop], again[:change_hop], rtol=0, atol=tol)  # those hops end before the change
    assert not np.allclose(whole[change_hop:], again[change_hop:], atol=max(tol, 1e-8))
    fe.reset()
    stepwise = np.stack([fe.process(y[i * hop : (i + 1) * hop]) for i in range(len(whole))])
    assert np.allclose(stepwise, whole, rtol=0, atol=tol)
    return whole
