"""Keeping a session's audio (``emotrack run --session DIR --keep-audio``) as FLAC.

Off by default: a therapy session's audio is sensitive (voices, names, what was said), and the emotion values
need none of it. When kept, a write error (disk full, a yanked drive) is logged once and counted, like the
store's; tracking goes on.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from emotrack.errors import OutputError

__all__ = ["AudioRecorder"]

logger = logging.getLogger(__name__)


class AudioRecorder:
    """Write float blocks to a FLAC file, opened at once (so an unwritable path fails before tracking starts).

    Parameters
    ----------
    path : str or Path
        The ``.flac`` file (overwritten if it exists: the caller picks a per-session name).
    samplerate : int
        Frames per second of the blocks given to :meth:`write`.
    channels : int
        Channels of the file; 2-D blocks with another channel count are mixed to mono when ``channels`` is 1.
    subtype : str
        FLAC sample format; 16 bit is plenty to listen back and half the size of 24.
    """

    def __init__(self, path: str | Path, samplerate: int, channels: int = 1, subtype: str = "PCM_16") -> None:
        import soundfile as sf

        self.path = Path(path)
        self.channels = int(channels)
        self.errors = 0
        """Blocks (or the close) that could not be written."""
        self.frames_written = 0
        self._lock = threading.Lock()
        try:
            self._file: sf.SoundFile | None = sf.SoundFile(self.path, "w", samplerate=int(samplerate),
                                                           channels=self.channels, format="FLAC", subtype=subtype)
        except (OSError, RuntimeError) as exc:  # soundfile's LibsndfileError is a RuntimeError
            raise OutputError(f"cannot write audio to {self.path}: {exc}") from None

    def write(self, block: np.ndarray) -> None:
        """Append one block, ``(frames,)`` or ``(frames, channels)``; never raises on a write error."""
        data = np.asarray(block, dtype=np.float32)
        if data.ndim == 1:
            data = data[:, None]
        if data.shape[1] != self.channels:
            if self.channels != 1:
                self._failed(ValueError(f"block has {data.shape[1]} channels, file {self.channels}"))
                return
            data = data.mean(axis=1, keepdims=True)
        data = np.clip(data, -1.0, 1.0)  # libsndfile wraps out-of-range floats around instead of clipping
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.write(data)
                self.frames_written += len(data)
            except (OSError, RuntimeError) as exc:
                self._failed(exc)

    def close(self) -> None:
        """Finish the file (idempotent)."""
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.close()
            except (OSError, RuntimeError) as exc:
                self._failed(exc)
            finally:
                self._file = None

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        if self.errors == 1:
            logger.warning("cannot write audio to %s (%s): audio is lost, tracking goes on", self.path, exc)
