"""Log-mel plus tonal columns: chroma and major/minor key clarity, for the valence axis.

Why: valence is the axis every log-mel model here learns worst, and harmony (major vs minor) is one of
its best-known cues. 64 mel bands cannot see it: below 1 kHz, where melody and chords sit, each band is
~46 Hz wide, about three semitones at middle C. This front end adds, to every 20 ms row of the log-mel
patch, the row's pitch-class profile (chroma, from a longer FFT that resolves semitones down to ~65 Hz)
and how well a running average of it fits the best major and the best minor key (Krumhansl-Kessler
profiles, as in MIRtoolbox's ``mirmode``). On VGMIDI that major-minus-minor clarity alone correlates
0.38 with a piece's mean valence.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from emotrack.frontends.logmel import LogMel

MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
"""Krumhansl & Kessler (1982) probe-tone ratings for a major key, tonic first."""

MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
"""Krumhansl & Kessler (1982) probe-tone ratings for a minor key, tonic first."""

N_TONAL = 14
"""Tonal columns appended to each log-mel row: 12 chroma bins (C first) + major and minor key clarity."""


def chroma_filterbank(sr: int, n_fft: int, fmin: float, fmax: float) -> np.ndarray:
    """Map FFT bins to the 12 pitch classes: ``[12, 1 + n_fft // 2]``, C = row 0, A4 = 440 Hz.

    A bin between ``fmin`` and ``fmax`` goes to its nearest pitch class with weight
    ``1 - 2 d`` (``d``: its distance in semitones to that class's centre, at most 0.5), so bins
    halfway between two semitones count for nothing.
    """
    hz = np.fft.rfftfreq(n_fft, 1.0 / sr)
    weights = np.zeros((12, len(hz)), np.float32)
    inside = (hz >= fmin) & (hz <= fmax)
    midi = 69.0 + 12.0 * np.log2(hz[inside] / 440.0)
    nearest = np.round(midi)
    weights[nearest.astype(int) % 12, np.flatnonzero(inside)] = 1.0 - 2.0 * np.abs(midi - nearest)
    return weights


def key_templates() -> np.ndarray:
    """The 24 key profiles ``[24, 12]`` (C..B major, then C..B minor), centred and unit-norm."""
    rows = [np.roll(profile, k) for profile in (MAJOR_PROFILE, MINOR_PROFILE) for k in range(12)]
    t = np.array(rows) - np.mean(rows, axis=1, keepdims=True)
    return (t / np.linalg.norm(t, axis=1, keepdims=True)).astype(np.float32)


KEY_TEMPLATES = key_templates()


def key_clarity(chroma: np.ndarray) -> np.ndarray:
    """Best Pearson correlation with any major and with any minor key: ``[..., 12]`` -> ``[..., 2]``.

    A flat (or silent) profile correlates with nothing and gives ``(0, 0)``.
    """
    c = chroma - chroma.mean(-1, keepdims=True)
    norm = np.linalg.norm(c, axis=-1, keepdims=True)
    c = np.where(norm > 1e-9, c / np.maximum(norm, 1e-9), 0.0)
    r = c @ KEY_TEMPLATES.T
    return np.stack([r[..., :12].max(-1), r[..., 12:].max(-1)], axis=-1).astype(np.float32)


class TonalColumns:
    """The :data:`N_TONAL` tonal columns of each ``row_hop``-sample row of a stream: ``process(hop)`` -> ``[rows, 14]``.

    Each row's chroma comes from a ``chroma_fft``-sample Hann window that ends where the row ends (zero
    look-ahead), normalised to sum 1 (all zeros in silence). The key clarities are those of a leaky average
    of the normalised chroma with time constant ``key_seconds``, so they describe the last few seconds'
    harmony, not one chord. Shared by :class:`LogMelTonal` (one row per log-mel row) and
    :class:`~emotrack.frontends.musicnn_tonal.MusicnnTonal` (their mean and spread per hop).
    """

    def __init__(
        self,
        sample_rate: int,
        hop_length: int,
        row_hop: int = 320,
        chroma_fft: int = 4096,
        chroma_fmin: float = 65.0,
        chroma_fmax: float = 2100.0,
        key_seconds: float = 5.0,
    ) -> None:
        if row_hop <= 0 or hop_length % row_hop:
            raise ValueError(f"the tonal row hop ({row_hop}) must divide the {hop_length}-sample hop")
        if chroma_fft < row_hop:
            raise ValueError(f"chroma_fft ({chroma_fft}) must be at least the row hop ({row_hop})")
        if not 0 < chroma_fmin < chroma_fmax <= sample_rate / 2 or key_seconds <= 0:
            raise ValueError("need 0 < chroma_fmin < chroma_fmax <= sample_rate / 2 and key_seconds > 0")
        self.sample_rate, self.hop_length, self.row_hop = int(sample_rate), int(hop_length), int(row_hop)
        self.chroma_fft = int(chroma_fft)
        self.chroma_fmin = float(chroma_fmin)
        self.chroma_fmax = float(chroma_fmax)
        self.key_seconds = float(key_seconds)
        self.rows = self.hop_length // self.row_hop
        self._window = np.hanning(self.chroma_fft + 1)[:-1]  # float64: numpy's float64 FFT is ~4x faster here
        weights = chroma_filterbank(self.sample_rate, self.chroma_fft, self.chroma_fmin, self.chroma_fmax)
        used = np.flatnonzero(weights.any(axis=0))
        if not len(used):
            raise ValueError(f"no FFT bin of a {self.chroma_fft}-sample window falls in {chroma_fmin}-{chroma_fmax} Hz")
        self._bins = slice(int(used[0]), int(used[-1]) + 1)  # only these FFT bins reach the chroma
        self._chroma = weights[:, self._bins].T.copy()
        self._decay = float(np.exp(-self.row_hop / (self.key_seconds * self.sample_rate)))
        self._long = np.zeros(self.chroma_fft - self.row_hop + self.hop_length, np.float32)
        self._average = np.zeros(12, np.float64)
        # The leaky average over one hop's rows in closed form: avg[i] = d^(i+1) avg[-1] + (1-d) sum_j<=i d^(i-j) c[j]
        lag = np.arange(self.rows)[:, None] - np.arange(self.rows)[None, :]
        self._leak = np.where(lag >= 0, (1.0 - self._decay) * self._decay ** np.maximum(lag, 0), 0.0)
        self._carry = self._decay ** np.arange(1, self.rows + 1)[:, None]
        self._windowed = np.empty((self.rows, self.chroma_fft), np.float64)

    def params(self) -> dict[str, Any]:
        return {"chroma_fft": self.chroma_fft, "chroma_fmin": self.chroma_fmin, "chroma_fmax": self.chroma_fmax,
                "key_seconds": self.key_seconds}

    def reset(self) -> None:
        self._long[:] = 0.0
        self._average[:] = 0.0

    def copy(self) -> TonalColumns:
        """An independent copy of the stream state (the filter tables are shared: they are never written)."""
        clone = copy.copy(self)
        clone._long, clone._average = self._long.copy(), self._average.copy()
        clone._windowed = np.empty_like(self._windowed)
        return clone

    def process(self, hop: np.ndarray) -> np.ndarray:
        """Chroma and key clarities of the next hop's rows: ``[hop_length]`` -> ``[rows, 14]`` float32."""
        keep = self.chroma_fft - self.row_hop
        self._long[:keep] = self._long[-keep:]
        self._long[keep:] = hop
        windows = np.lib.stride_tricks.sliding_window_view(self._long, self.chroma_fft)[:: self.row_hop]
        np.multiply(windows, self._window, out=self._windowed)
        spectrum = np.fft.rfft(self._windowed, axis=-1)[:, self._bins]
        energy = (spectrum.real**2 + spectrum.imag**2) @ self._chroma
        total = energy.sum(-1, keepdims=True)
        chroma = np.where(total > 1e-10, energy / np.maximum(total, 1e-10), 0.0)
        averaged = self._leak @ chroma + self._carry * self._average
        self._average = averaged[-1]
        return np.concatenate([chroma, key_clarity(averaged)], axis=-1).astype(np.float32)


class LogMelTonal(LogMel):
    """Causal log-mel rows with :data:`N_TONAL` tonal columns (:class:`TonalColumns`): frames ``[25, n_mels + 14]``.

    Each row's tonal columns end where the row's mel window ends (zero look-ahead, as in :class:`LogMel`).

    Parameters
    ----------
    chroma_fft : int
        Chroma FFT length (default 4096: 256 ms, 3.9 Hz bins at 16 kHz).
    chroma_fmin, chroma_fmax : float
        Frequency range folded into the chroma (default 65-2100 Hz: C2 to C7).
    key_seconds : float
        Time constant of the running chroma average behind the key clarities.
    **logmel :
        :class:`LogMel` parameters.
    """

    name = "logmel_tonal"

    def __init__(
        self,
        chroma_fft: int = 4096,
        chroma_fmin: float = 65.0,
        chroma_fmax: float = 2100.0,
        key_seconds: float = 5.0,
        **logmel: Any,
    ) -> None:
        super().__init__(**logmel)
        self.tonal = TonalColumns(self.sample_rate, self.hop_length, self.hop_length_stft, chroma_fft, chroma_fmin,
                                  chroma_fmax, key_seconds)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return (self.frames_per_hop, self.n_mels + N_TONAL)

    def params(self) -> dict[str, Any]:
        return {**super().params(), **self.tonal.params()}

    def reset(self) -> None:
        super().reset()
        self.tonal.reset()

    def process(self, hop: np.ndarray) -> np.ndarray:
        return np.concatenate([super().process(hop), self.tonal.process(hop)], axis=-1)
