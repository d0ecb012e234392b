"""Audio decoding and streaming resampling shared by file input and live capture.

Everything downstream of this module sees mono float32 audio at the model's sample rate, delivered
in blocks; file and device input go through the same :class:`Resampler`, so offline analysis and
live streaming produce the same samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from emotrack.errors import AudioError

__all__ = [
    "FAST_BLOCK_SECONDS",
    "FILE_BLOCK_SECONDS",
    "Resampler",
    "audio_info",
    "audio_seconds",
    "downmix",
    "iter_file_blocks",
    "load_audio",
    "rms_dbfs",
]

FILE_BLOCK_SECONDS = 0.02
"""Block length when a file is paced like a sound card (small blocks keep the added latency low)."""

FAST_BLOCK_SECONDS = 1.0
"""Block length when a file is read as fast as possible (``analyze``, ``run --fast``): fewer, larger
reads. Hops are cut by sample count, so the block length does not change the results."""


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level of samples ``x`` in dB relative to full scale (a full-scale square wave is 0; silence -inf)."""
    rms = math.sqrt(float(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def downmix(block: np.ndarray) -> np.ndarray:
    """Average the channels of a ``(frames, channels)`` block to mono float32 ``(frames,)``."""
    if block.ndim == 1:
        return block.astype(np.float32, copy=False)
    if block.shape[1] == 1:
        return block[:, 0].astype(np.float32, copy=False)
    if block.shape[1] == 2:  # the usual case: same numbers as the mean below, ~10x faster than its strided reduction
        return (block[:, 0].astype(np.float32) + block[:, 1].astype(np.float32)) * np.float32(0.5)
    return block.mean(axis=1, dtype=np.float32)


class Resampler:
    """Streaming mono resampler (soxr), a no-op when the rates already match.

    Parameters
    ----------
    sr_in, sr_out : int
        Input and output sample rates in Hz.
    """

    def __init__(self, sr_in: int, sr_out: int) -> None:
        self.sr_in = int(sr_in)
        self.sr_out = int(sr_out)
        self._stream = None
        if self.sr_in != self.sr_out:
            self._stream = soxr.ResampleStream(self.sr_in, self.sr_out, 1, dtype="float32", quality="HQ")

    def process(self, mono: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample the next block; pass ``last=True`` to flush the filter tail at end of stream."""
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        if self._stream is None:
            return mono
        return self._stream.resample_chunk(mono, last=last)


def _open(path: str | Path) -> sf.SoundFile:
    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if path.is_dir():
        raise AudioError(f"expected an audio file, got a directory: {path}")
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"cannot decode {path}: not a readable audio file ({exc})") from None
    if f.frames == 0 or f.samplerate <= 0:
        f.close()
        raise AudioError(f"cannot decode {path}: the file holds no audio")
    return f


def audio_info(path: str | Path) -> tuple[int, int]:
    """Return ``(sample_rate, channels)`` of an audio file, raising :class:`AudioError` if unreadable."""
    with _open(path) as f:
        return f.samplerate, f.channels


def audio_seconds(path: str | Path) -> float:
    """Duration from the file's header (mp3 headers can be off by a frame or two); 0 if it cannot be read."""
    try:
        with _open(path) as f:
            return f.frames / f.samplerate
    except AudioError:
        return 0.0


def iter_file_blocks(path: str | Path, block_seconds: float = FILE_BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Yield ``(frames, channels)`` float32 blocks of a file at its native rate.

    mp3 length headers can overstate the length, so decoding runs until the decoder stops.
    A decode error mid-file raises :class:`AudioError`.
    """
    f = _open(path)
    with f:
        block = max(1, int(round(block_seconds * f.samplerate)))
        while True:
            try:
                data = f.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioError(f"cannot decode {path}: {exc}") from None
            if len(data) == 0:
                return
            yield data
            if len(data) < block:
                return


def load_audio(path: str | Path, sr: int, block_seconds: float = FILE_BLOCK_SECONDS) -> np.ndarray:
    """Decode a whole file to mono float32 at ``sr`` Hz, exactly as the streaming path would see it."""
    sr_in, _ = audio_info(path)
    resampler = Resampler(sr_in, sr)
    out = [resampler.process(downmix(b)) for b in iter_file_blocks(path, block_seconds)]
    out.append(resampler.process(np.zeros(0, np.float32), last=True))
    return np.concatenate(out) if out else np.zeros(0, np.float32)
