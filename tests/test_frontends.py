"""Front ends: librosa-equal filters, causality, incremental == whole-signal."""

from __future__ import annotations

import numpy as np
import pytest

from emotrack.audio import load_audio
from emotrack.frontends import LogMel, Normalizer, Wave, make_frontend
from emotrack.frontends.logmel import mel_filterbank


@pytest.mark.parametrize(
    "sr,n_fft,n_mels,fmin,fmax", [(16000, 1024, 64, 30.0, 8000.0), (44100, 2646, 128, 0.0, 22050.0)]
)
def test_mel_filterbank_equals_librosa(sr, n_fft, n_mels, fmin, fmax):
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert np.max(np.abs(ours - ref)) < 1e-7


def test_logmel_matches_librosa_on_real_audio(example_audio):
    """Our causal framing is librosa's centre=False STFT shifted so each frame ends on its hop."""
    librosa = pytest.importorskip("librosa")
    y = load_audio(example_audio, 16000)[: 16000 * 4]
    ours = LogMel().process_signal(y).reshape(-1, 64)  # 8 hops x 25 frames
    padded = np.concatenate([np.zeros(1024 - 320, np.float32), y])
    mel = librosa.feature.melspectrogram(y=padded, sr=16000, n_fft=1024, hop_length=320, center=False, n_mels=64,
                                         fmin=30.0, fmax=8000.0, window="hann")
    ref = np.log(mel.T[: len(ours)] + 1e-6)
    assert np.max(np.abs(ours - ref)) < 1e-3


def test_logmel_is_causal_and_incremental(example_audio):
    y = load_audio(example_audio, 16000)[: 16000 * 6]
    fe = LogMel()
    whole = fe.process_signal(y)
    changed = y.copy()
    changed[8000 * 5 :] = np.random.default_rng(0).normal(size=len(changed) - 8000 * 5)
    again = fe.process_signal(changed)
    assert np.array_equal(whole[:5], again[:5])  # hops 0-4 end before the change
    assert not np.array_equal(whole[5:], again[5:])
    fe.reset()
    stepwise = np.stack([fe.process(y[i * 8000 : (i + 1) * 8000]) for i in range(len(whole))])
    assert np.array_equal(stepwise, whole)


def test_wave_and_factory():
    fe = make_frontend("wave", {"sample_rate": 16000})
    assert isinstance(fe, Wave) and fe.frame_shape == (8000,)
    assert make_frontend("logmel", LogMel().params()).frame_shape == (25, 64)


def test_normalizer_roundtrip():
    frames = np.random.default_rng(1).normal(3.0, 2.0, size=(50, 25, 64)).astype(np.float32)
    norm = Normalizer.fit(frames, axes=(0, 1))
    out = Normalizer.from_dict(norm.to_dict())(frames)
    assert abs(out.mean()) < 1e-3 and abs(out.std() - 1) < 1e-2
