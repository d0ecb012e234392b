"""Batched computation: many hops of one file (analyze) and many streams in one process (MultiTracker)
give each stream the numbers it gets alone, hop by hop."""

from __future__ import annotations

import numpy as np
import pytest

from emotrack.analyze import analyze_file
from emotrack.audio import load_audio
from emotrack.inference import DEFAULT_MODEL, ModelRunner
from emotrack.realtime.smoothing import make_smoother
from emotrack.realtime.streams import MultiTracker
from emotrack.realtime.tracker import Tracker


@pytest.fixture(scope="module")
def runner() -> ModelRunner:
    return ModelRunner(DEFAULT_MODEL, provider="cpu")


def hop_by_hop(runner: ModelRunner, audio: np.ndarray, rate: int, block: int, smooth: bool = True) -> np.ndarray:
    tracker = Tracker(runner, rate, make_smoother("ema") if smooth else None)
    results = [r for i in range(0, len(audio), block) for r in tracker.process(audio[i : i + block])]
    results += tracker.finish()
    return np.array([[r.valence_raw, r.arousal_raw, r.valence, r.arousal] for r in results])


def test_batched_file_analysis_equals_the_live_path(runner, example_audio):
    """analyze's 64-hop batches give run's hop-by-hop numbers (raw and smoothed) to 1e-5."""
    import soundfile as sf

    audio, rate = sf.read(str(example_audio), dtype="float32", always_2d=True)
    live = hop_by_hop(runner, audio, rate, block=int(0.02 * rate))
    batched = analyze_file(example_audio, runner, make_smoother("ema"))
    assert len(batched) == len(live) > 64  # more than one batch
    got = np.array([[r.valence_raw, r.arousal_raw, r.valence, r.arousal] for r in batched])
    assert np.max(np.abs(got - live)) < 1e-5
    assert [r.seq for r in batched] == list(range(len(batched)))


def test_multitracker_gives_each_stream_its_own_numbers(runner, example_audio):
    """Three streams at different points of real music, at different input rates, fed blocks of different
    sizes in one process: each stream's results equal a Tracker of its own."""
    y = load_audio(example_audio, 16000)
    import soxr

    streams = [(y[: 16000 * 20], 16000), (y[16000 * 30 : 16000 * 50], 16000),
               (soxr.resample(y[16000 * 10 : 16000 * 30], 16000, 44100).astype(np.float32), 44100)]
    multi = MultiTracker(runner, [rate for _, rate in streams], [make_smoother("ema") for _ in streams])
    blocks = [int(0.02 * rate) * (k + 1) for k, (_, rate) in enumerate(streams)]
    got: list[list] = [[] for _ in streams]
    position = [0] * len(streams)
    while any(p < len(a) for p, (a, _) in zip(position, streams, strict=True)):
        feed = []
        for k, (audio, _) in enumerate(streams):
            feed.append(audio[position[k] : position[k] + blocks[k]] if position[k] < len(audio) else None)
            position[k] += blocks[k]
        for k, results in enumerate(multi.process(feed)):
            got[k] += results
    for k, (audio, rate) in enumerate(streams):
        alone = hop_by_hop(runner, audio, rate, blocks[k])
        mine = np.array([[r.valence_raw, r.arousal_raw, r.valence, r.arousal] for r in got[k]])
        assert len(mine) >= len(alone) - 1  # the resampler's tail may hold back the last hop until finish()
        assert np.max(np.abs(mine - alone[: len(mine)])) < 1e-5
    first, second = (np.array([r.arousal_raw for r in results[:30]]) for results in got[:2])
    assert not np.allclose(first, second)


def test_multitracker_rejects_mismatched_inputs(runner):
    with pytest.raises(ValueError, match="at least one stream"):
        MultiTracker(runner, [])
    multi = MultiTracker(runner, [16000, 16000])
    with pytest.raises(ValueError, match="1 blocks for 2 streams"):
        multi.process([np.zeros(100, np.float32)])


def test_multitracker_with_a_front_end_without_a_network(example_audio):
    """Front ends without a batched network call (the light ``mca``'s) go hop by hop inside one tick, same numbers."""
    light = ModelRunner("mca", provider="cpu")
    y = load_audio(example_audio, 16000)
    streams = [y[: 16000 * 8], y[16000 * 20 : 16000 * 28]]
    multi = MultiTracker(light, [16000, 16000])
    got: list[list] = [[], []]
    for i in range(0, 16000 * 8, 4000):
        for k, results in enumerate(multi.process([s[i : i + 4000] for s in streams])):
            got[k] += results
    for k, audio in enumerate(streams):
        alone = hop_by_hop(light, audio, 16000, 4000, smooth=False)
        mine = np.array([[r.valence_raw, r.arousal_raw, r.valence, r.arousal] for r in got[k]])
        assert len(mine) == len(alone) == 16
        assert np.max(np.abs(mine - alone)) < 1e-5
