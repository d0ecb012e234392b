"""Incremental log-mel spectrogram: one ``(frames_per_hop, n_mels)`` patch per hop."""

from __future__ import annotations

from typing import Any

import numpy as np

from emotrack.frontends.base import FrontEnd


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's auditory mel scale: linear below 1 kHz, logarithmic above (librosa's default)."""
    hz = np.asarray(hz, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = np.log(6.4) / 27.0
    linear = hz / f_sp
    return np.where(hz >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular, area-normalised ("Slaney") mel filters ``[n_mels, 1 + n_fft // 2]``.

    The same matrix as ``librosa.filters.mel`` with its defaults (checked in the tests); built here
    so the runtime does not import librosa and numba (seconds of start-up) for one matrix.
    """
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


class LogMel(FrontEnd):
    """Causal log-mel patches.

    Each STFT frame *ends* on a multiple of ``hop_length_stft`` samples, so no frame reaches past
    the current hop (zero look-ahead). The previous ``n_fft - hop_length_stft`` samples are kept
    between hops; at stream start they are zeros.

    Parameters
    ----------
    sample_rate : int
        Input rate in Hz (default 16000).
    n_fft : int
        FFT and Hann window length in samples (default 1024, 64 ms).
    hop_length_stft : int
        STFT hop in samples (default 320, 20 ms: 25 frames per 0.5 s hop).
    n_mels, fmin, fmax :
        Mel filterbank (:func:`mel_filterbank`) with ``n_mels`` bands from ``fmin`` to ``fmax`` Hz.
    log_offset : float
        Added before the natural log to keep silence finite.
    """

    name = "logmel"

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length_stft: int = 320,
        n_mels: int = 64,
        fmin: float = 30.0,
        fmax: float = 8000.0,
        log_offset: float = 1e-6,
    ) -> None:
        super().__init__(sample_rate)
        if self.hop_length % hop_length_stft:
            raise ValueError("hop_length_stft must divide the 0.5 s hop")
        self.n_fft = int(n_fft)
        self.hop_length_stft = int(hop_length_stft)
        self.n_mels = int(n_mels)
        self.fmin = float(fmin)
        self.fmax = float(fmax)
        self.log_offset = float(log_offset)
        self.frames_per_hop = self.hop_length // self.hop_length_stft
        self._window = np.hanning(self.n_fft + 1)[:-1].astype(np.float32)  # periodic Hann
        self._mel = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax).T.copy()
        self._buf = np.zeros(self.n_fft - self.hop_length_stft + self.hop_length, np.float32)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return (self.frames_per_hop, self.n_mels)

    def params(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "n_fft": self.n_fft,
            "hop_length_stft": self.hop_length_stft,
            "n_mels": self.n_mels,
            "fmin": self.fmin,
            "fmax": self.fmax,
            "log_offset": self.log_offset,
        }

    def reset(self) -> None:
        self._buf[:] = 0.0

    def process(self, hop: np.ndarray) -> np.ndarray:
        keep = self.n_fft - self.hop_length_stft
        self._buf[:keep] = self._buf[-keep:]
        self._buf[keep:] = hop
        frames = np.lib.stride_tricks.sliding_window_view(self._buf, self.n_fft)[:: self.hop_length_stft]
        power = np.abs(np.fft.rfft(frames * self._window, axis=-1)) ** 2
        return np.log(power.astype(np.float32) @ self._mel + self.log_offset).astype(np.float32)
