"""The network probe (``bench.accuracy.network_probe``): averaging two read-outs' probabilities finds what
each view knows, and a second network must be named with both of its graphs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("sklearn")  # the probe's read-out lives in the train extra

from bench.accuracy.layer_probe import probe  # noqa: E402
from bench.accuracy.network_probe import paired_probe, register  # noqa: E402


def test_two_views_that_each_know_one_axis_together_name_the_quadrant() -> None:
    rng = np.random.default_rng(0)
    quadrants = np.tile([1, 2, 3, 4], 60)
    arousal = np.where(quadrants <= 2, 1.0, -1.0)
    valence = np.where(np.isin(quadrants, (1, 4)), 1.0, -1.0)
    clips = [SimpleNamespace(quadrant=int(q), group=i // 2) for i, q in enumerate(quadrants)]
    knows_arousal = np.stack([arousal, rng.standard_normal(len(clips))], 1) + 0.3 * rng.standard_normal((240, 2))
    knows_valence = np.stack([valence, rng.standard_normal(len(clips))], 1) + 0.3 * rng.standard_normal((240, 2))
    test_parts = [np.arange(k, 240, 5) for k in range(5)]
    folds = [(np.setdiff1d(np.arange(240), t), t) for t in test_parts]
    rows = paired_probe({"arousal": knows_arousal, "valence": knows_valence}, clips, folds)
    alone = [probe(x, clips, folds) for x in (knows_arousal, knows_valence)]
    assert [rows["arousal"], rows["valence"]] == alone  # each view scored exactly as probe scores it
    assert max(r["weighted_f1_mean"] for r in alone) < 0.6  # one axis of two: about half the quadrants
    together = rows["arousal, valence: probabilities averaged"]
    assert together["weighted_f1_mean"] > 0.9 and together["width"] == 4


def test_a_network_needs_its_stream_and_backend_graphs(tmp_path, monkeypatch) -> None:
    from emotrack.frontends import musicnn

    monkeypatch.setattr(musicnn, "WEIGHTS", dict(musicnn.WEIGHTS))
    stream = tmp_path / "musicnn_x_stream.onnx"
    stream.write_bytes(b"")
    with pytest.raises(SystemExit, match="backend"):
        register(f"x={stream}")
    stream.with_name("musicnn_x_backend.onnx").write_bytes(b"")
    assert register(f"x={stream}") == "x" and musicnn.WEIGHTS["x"] == stream
    with pytest.raises(SystemExit, match="NAME=PATH"):
        register(str(stream))
