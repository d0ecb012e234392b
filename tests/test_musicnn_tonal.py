"""The default model's front end: two musicnn pooling windows plus the hop's tonal statistics.

Each part must be exactly what its own definition gives, so the cached training frames, export parity and
the runtime agree: the long window is :class:`Musicnn`'s embedding, the short one the same back end on the
newest ``recent_frames`` final frames, and the tonal columns :class:`LogMelTonal`'s rows summarised per hop.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from checks import assert_causal_and_incremental

from emotrack.audio import load_audio
from emotrack.frontends import LogMelTonal, Musicnn, MusicnnTonal, make_frontend
from emotrack.frontends.musicnn import N_FRAMES, embed, pool
from emotrack.frontends.musicnn_tonal import tonal_summary
from emotrack.frontends.tonal import N_TONAL


@pytest.fixture(scope="module")
def example_16k(example_audio) -> np.ndarray:
    return load_audio(example_audio, 16000)[: 16000 * 20]


def test_frame_is_long_embedding_short_embedding_and_tonal_statistics(example_16k):
    fe = MusicnnTonal()
    frames = fe.process_signal(example_16k)
    assert frames.shape == (40, 2 * 200 + 2 * N_TONAL) and fe.frame_shape == (428,)
    # the 2.9 s window: musicnn's own embedding, bit for bit (same code path)
    assert np.array_equal(frames[:, :200], Musicnn().process_signal(example_16k))
    # the tonal part: LogMelTonal's tonal rows (same 20 ms grid), mean and std over each hop's 25 rows
    rows = LogMelTonal().process_signal(example_16k)[..., -N_TONAL:]
    assert np.allclose(frames[:, 400:], tonal_summary(rows), atol=1e-6)
    # the 1 s window: the back end on the newest 64 final frames (fewer at the start)
    ref = Musicnn()
    ref.reset()
    short = []
    for hop in example_16k.reshape(-1, 8000):
        ref.process(hop)
        short.append(pool(ref._ring[N_FRAMES - min(64, ref._filled):]))
    want = embed(np.stack(short), ref._backend, "penultimate")
    assert np.allclose(frames[:, 200:400], want, atol=1e-5 * float(np.abs(want).max()))
    # the short window follows a change sooner: after a cut to silence it moves further from the old value
    cut = np.concatenate([example_16k[: 16000 * 10], np.zeros(16000 * 4, np.float32)])
    f = MusicnnTonal().process_signal(cut)
    before, after = f[19], f[21]  # 0.5 s before the cut, 0.5 s after it
    assert np.linalg.norm(after[200:400] - before[200:400]) > np.linalg.norm(after[:200] - before[:200])


def test_causal_incremental_and_rebuilt_from_its_card_params(example_16k):
    fe = make_frontend("musicnn_tonal")
    whole = assert_causal_and_incremental(fe, example_16k[: 8000 * 24], change_hop=20, rtol=1e-5)
    rebuilt = make_frontend("musicnn_tonal", fe.params())
    assert np.allclose(rebuilt.process_signal(example_16k[: 8000 * 24]), whole, atol=1e-5)
    assert make_frontend("musicnn_tonal", {"recent_frames": 0}).frame_shape == (200 + 2 * N_TONAL,)


def test_many_streams_in_one_call_equal_each_stream_alone(example_16k):
    base = MusicnnTonal()
    streams, alone = [copy.deepcopy(base) for _ in range(3)], [copy.deepcopy(base) for _ in range(3)]
    offsets = (0, 16000 * 5, 16000 * 11)
    for h in range(6):
        hops = np.stack([example_16k[o + h * 8000 : o + (h + 1) * 8000] for o in offsets])
        together = MusicnnTonal.process_many(streams, hops)
        single = np.stack([fe.process(hop) for fe, hop in zip(alone, hops, strict=True)])
        assert together.shape == (3, 428)
        assert np.allclose(together, single, rtol=0, atol=1e-5 * float(np.abs(single).max()))
    twin = copy.deepcopy(streams[0])
    twin.process(np.zeros(8000, np.float32))
    assert not np.array_equal(twin.tonal._long, streams[0].tonal._long)  # copies keep their own tonal state


def test_silence_has_no_tonal_content_and_bad_parameters_are_refused():
    frames = MusicnnTonal().process_signal(np.zeros(16000 * 2, np.float32))
    assert not frames[:, 400:].any()
    with pytest.raises(ValueError, match="recent_frames"):
        MusicnnTonal(recent_frames=187)
    with pytest.raises(ValueError, match="chroma"):
        MusicnnTonal(chroma_fmin=3000.0, chroma_fmax=2000.0)
