"""Incremental log-mel spectrogram: one ``(frames_per_hop, n_mels)`` patch per hop."""

from __future__ import annotations

from typing import Any

import numpy as np

from emotrack.frontends.base import FrontEnd


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
        Mel filterbank (Slaney-style, librosa defaults) with ``n_mels`` bands from ``fmin`` to ``fmax`` Hz.
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
        import librosa.filters  # heavy import, only when a log-mel model is used

        self.n_fft = int(n_fft)
        self.hop_length_stft = int(hop_length_stft)
        self.n_mels = int(n_mels)
        self.fmin = float(fmin)
        self.fmax = float(fmax)
        self.log_offset = float(log_offset)
        self.frames_per_hop = self.hop_length // self.hop_length_stft
        self._window = np.hanning(self.n_fft + 1)[:-1].astype(np.float32)  # periodic Hann
        self._mel = librosa.filters.mel(
            sr=self.sample_rate, n_fft=self.n_fft, n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax
        ).astype(np.float32).T.copy()
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
