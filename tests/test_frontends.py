"""Front ends: librosa-equal filters, causality, incremental == whole-signal."""

from __future__ import annotations

import numpy as np
import pytest
from checks import assert_causal_and_incremental

from emotrack.audio import load_audio
from emotrack.frontends import LogMel, LogMelTonal, Normalizer, Wave, make_frontend
from emotrack.frontends.logmel import mel_filterbank
from emotrack.frontends.tonal import N_TONAL, chroma_filterbank


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
    assert_causal_and_incremental(LogMel(), y, change_hop=5)


def test_wave_and_factory():
    fe = make_frontend("wave", {"sample_rate": 16000})
    assert isinstance(fe, Wave) and fe.frame_shape == (8000,)
    assert make_frontend("logmel", LogMel().params()).frame_shape == (25, 64)


def test_normalizer_roundtrip():
    frames = np.random.default_rng(1).normal(3.0, 2.0, size=(50, 25, 64)).astype(np.float32)
    norm = Normalizer.fit(frames, axes=(0, 1))
    out = Normalizer.from_dict(norm.to_dict())(frames)
    assert abs(out.mean()) < 1e-3 and abs(out.std() - 1) < 1e-2


# -- tonal columns (logmel_tonal) -------------------------------------------------------------------


def _chord(midi_notes: list[int], seconds: float = 6.0, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.1 * sum(np.sin(2 * np.pi * 440.0 * 2 ** ((m - 69) / 12) * t) for m in midi_notes)).astype(np.float32)


def test_chroma_filterbank_maps_bins_to_pitch_classes():
    fb = chroma_filterbank(16000, 4096, 65.0, 2100.0)
    hz = np.fft.rfftfreq(4096, 1 / 16000)
    assert fb.shape == (12, 2049)
    assert fb[9, np.argmin(np.abs(hz - 440.0))] > 0.8  # A4 -> A (nearest bin: 437.5 Hz)
    assert fb[0, np.argmin(np.abs(hz - 261.63))] > 0.8  # C4 -> C
    assert not fb[:, hz < 65.0].any() and not fb[:, hz > 2100.0].any()
    assert (fb.sum(0) <= 1.0 + 1e-6).all()  # each bin goes to one pitch class at most


@pytest.mark.parametrize(
    "notes,major_wins", [([60, 64, 67], True), ([57, 60, 64], False), ([62, 66, 69], True), ([64, 67, 71], False)]
)
def test_key_clarity_tells_major_from_minor_chords(notes, major_wins):
    """C, D major vs A, E minor triads: after a few seconds the running key fit prefers the right mode,
    and the strongest chroma bin is one of the chord's notes."""
    frames = LogMelTonal().process_signal(_chord(notes))
    last = frames[-1, -1]
    major, minor = last[-2:]
    assert (major > minor) == major_wins
    assert int(np.argmax(last[-N_TONAL:-2])) in {n % 12 for n in notes}


def test_logmel_tonal_is_logmel_plus_causal_tonal_columns(example_audio):
    y = load_audio(example_audio, 16000)[: 16000 * 6]
    fe = LogMelTonal()
    whole = assert_causal_and_incremental(fe, y, change_hop=5)
    assert whole.shape == (12, 25, 64 + N_TONAL)
    np.testing.assert_array_equal(whole[..., :64], LogMel().process_signal(y))
    chroma = whole[..., 64:76]
    assert np.allclose(chroma.sum(-1), 1.0, atol=1e-5) and (chroma >= 0).all()
    rebuilt = make_frontend("logmel_tonal", fe.params())
    assert rebuilt.params() == fe.params() and rebuilt.frame_shape == (25, 78)
    assert not LogMelTonal().process_signal(np.zeros(16000, np.float32))[..., 64:].any()  # silence: no tonal content
