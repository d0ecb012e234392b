"""Incremental Smile-260: openSMILE ComParE LLD + delta mean/std per 0.5 s hop (MCA's features).

Needs the optional ``opensmile`` extra (``pip install 'emotrack[opensmile]'``); its licence is
non-commercial, so the core package never imports it. Importing this module without opensmile raises
:class:`ImportError`, which :mod:`emotrack.frontends` turns into "front end not available".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import opensmile  # ImportError here is the "extra not installed" signal (see emotrack.frontends)

from emotrack.frontends.base import FrontEnd

LLD_STEP_SECONDS = 0.010
"""openSMILE ComParE frame shift: LLD row ``i`` of a call starts at ``i * 10 ms`` into the signal passed."""

LLD_WINDOW_SECONDS = 0.060
"""Longest ComParE LLD analysis window (the pitch/voice-quality frames); the energy and spectral
frames of the same row are shorter and start at the same time, so they end earlier."""

N_LLD = 65
"""ComParE 2016 low-level descriptors (and as many first-order deltas)."""


class Smile260(FrontEnd):
    """Causal Smile-260 frames: one ``[260]`` float32 vector per 0.5 s hop.

    The vector is, in this order, the mean of the 65 ComParE 2016 LLDs (``*_sma``) over the hop's
    LLD frames, their population standard deviations, then the means and standard deviations of the
    65 deltas (``*_sma_de``): ``[lld_mean(65), lld_std(65), delta_mean(65), delta_std(65)]``, each
    block in openSMILE's column order (:attr:`feature_names`). That is the MediaEval 2015 / DEAM
    baseline feature used by the MCA paper (spec models.md §0.5), computed per hop instead of per clip
    so a stream can be tracked live.

    Why history: LLD windows (up to 60 ms), the 3-frame ``_sma`` smoothing, the delta regression and
    the recursive filters (RASTA, pitch smoothing) all need audio before the hop. Each hop, openSMILE
    runs on the last ``history_seconds`` of audio plus the new hop, and only the LLD rows whose 60 ms
    window *ends inside the new hop* are kept: exactly 50 rows per hop, so every 10 ms row of the
    stream belongs to exactly one hop. At stream start the history is zeros (silence).

    Look-ahead: within openSMILE the ``_sma`` smoothing reads one row ahead (10 ms) and the delta
    regression (window 2 over the smoothed LLDs) two more (about 30 ms in all). Because only audio
    up to the end of the current hop is passed, nothing past the hop end is ever read: the rows in
    the hop's last ~30 ms are computed with truncated context (openSMILE's end-of-input handling)
    instead. The frame therefore depends only on audio up to the hop's last sample (zero algorithmic
    look-ahead), at the cost of those last rows differing slightly from an offline whole-clip run.
    Recursive features also differ from an offline run in the first few rows of each call, since
    their state restarts from the history window, so do not mix these frames with DEAM's
    precomputed per-clip CSVs without checking.

    Non-finite values (openSMILE can emit NaN for silent or unvoiced input) are replaced by 0.

    Parameters
    ----------
    sample_rate : int
        Input rate in Hz (default 16000, the rate the ComParE configuration was designed for).
    history_seconds : float
        Audio kept before each hop as context, a multiple of 10 ms of at least 60 ms (default 0.3 s).
        Longer history lets recursive features settle but costs openSMILE time on every hop.

    Notes
    -----
    Cost: two ``process_signal`` calls (LLDs, deltas) on ``history + 0.5 s`` of audio per hop,
    about 50 ms of one CPU core per 0.5 s hop; opensmile's per-call overhead dominates.
    """

    name = "smile260"

    def __init__(self, sample_rate: int = 16000, history_seconds: float = 0.3) -> None:
        super().__init__(sample_rate)
        steps = history_seconds / LLD_STEP_SECONDS
        if abs(steps - round(steps)) > 1e-6 or history_seconds < LLD_WINDOW_SECONDS - 1e-9:
            raise ValueError("history_seconds must be a multiple of 10 ms and at least 60 ms")
        step = LLD_STEP_SECONDS * self.sample_rate
        if abs(step - round(step)) > 1e-6:
            raise ValueError("sample_rate must give a whole number of samples per 10 ms LLD step")
        self.history_seconds = float(history_seconds)
        self.history_length = int(round(history_seconds * self.sample_rate))
        self._steps_history = int(round(steps))
        self._steps_hop = int(round(self.hop_length / step))
        self._window_steps = int(round(LLD_WINDOW_SECONDS / LLD_STEP_SECONDS))
        # Row i's window is [i, i + 6) steps; keep rows whose window ends in (history, history + hop].
        self._first = self._steps_history - self._window_steps + 1
        self._stop = self._first + self._steps_hop
        self._lld = opensmile.Smile(opensmile.FeatureSet.ComParE_2016, opensmile.FeatureLevel.LowLevelDescriptors)
        self._delta = opensmile.Smile(
            opensmile.FeatureSet.ComParE_2016, opensmile.FeatureLevel.LowLevelDescriptors_Deltas
        )
        self._buf = np.zeros(self.history_length + self.hop_length, np.float32)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return (4 * N_LLD,)

    @property
    def feature_names(self) -> list[str]:
        """Names of the 260 outputs, e.g. ``F0final_sma_mean`` ... ``pcm_zcr_sma_de_stddev``."""
        lld, delta = list(self._lld.feature_names), list(self._delta.feature_names)
        return [f"{c}_{stat}" for cols in (lld, delta) for stat in ("mean", "stddev") for c in cols]

    def params(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "history_seconds": self.history_seconds}

    def reset(self) -> None:
        self._buf[:] = 0.0

    def _rows(self, smile: opensmile.Smile) -> np.ndarray:
        """The hop's LLD rows from one openSMILE call on history + hop (by position: openSMILE's end-of-input
        flush rows come after them and carry clamped, duplicate timestamps)."""
        values = smile.process_signal(self._buf, self.sample_rate).to_numpy(np.float32)
        rows = values[self._first : self._stop]
        if len(rows) != self._steps_hop:  # opensmile changed its framing: fail loudly, not silently
            raise RuntimeError(f"openSMILE returned {len(values)} rows for {len(self._buf)} samples")
        return rows

    def process(self, hop: np.ndarray) -> np.ndarray:
        hop = np.asarray(hop, np.float32)
        if hop.shape != (self.hop_length,):
            raise ValueError(f"expected a hop of {self.hop_length} samples, got shape {hop.shape}")
        self._buf[: self.history_length] = self._buf[self.hop_length :]
        self._buf[self.history_length :] = hop
        parts = []
        for rows in (self._rows(self._lld), self._rows(self._delta)):
            rows = np.nan_to_num(rows, nan=0.0, posinf=0.0, neginf=0.0)
            parts += [rows.mean(0), rows.std(0)]
        return np.nan_to_num(np.concatenate(parts), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
