"""Audio sources: something that yields ``(block, t_last)`` pairs at its own pace.

A source only delivers audio; hop cutting and everything after it happen in
:class:`~emotrack.realtime.tracker.Tracker`, so every source feeds the same pipeline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from emotrack.audio import FAST_BLOCK_SECONDS, FILE_BLOCK_SECONDS, audio_info, iter_file_blocks

__all__ = ["FileSource"]


class FileSource:
    """Stream an audio file, paced at real time (like a sound card) or as fast as possible.

    Parameters
    ----------
    path : path
        Any format soundfile decodes (wav, flac, ogg, mp3), any rate and channel count.
    realtime : bool
        Deliver each block when its last sample would have been captured live.
    loop : bool
        Start over at the end (paced demo use).
    stop : threading.Event, optional
        Set to end the stream early.
    block_seconds : float, optional
        Read size; defaults to small blocks when paced and large ones otherwise.
    """

    def __init__(
        self,
        path: str | Path,
        realtime: bool = True,
        loop: bool = False,
        stop: threading.Event | None = None,
        block_seconds: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.sample_rate, self.channels = audio_info(self.path)  # fails early on a bad file
        self.realtime = realtime
        self.loop = loop
        self.stop = stop or threading.Event()
        self.block_seconds = block_seconds or (FILE_BLOCK_SECONDS if realtime else FAST_BLOCK_SECONDS)
        self.dropped = 0  # a file never loses audio
        self.status_flags = 0

    @property
    def description(self) -> str:
        pace = "real time" if self.realtime else "as fast as possible"
        return f"file {self.path.name} ({self.sample_rate} Hz, {self.channels} ch, {pace})"

    def __enter__(self) -> FileSource:  # same protocol as CaptureSource; a file holds nothing open between reads
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        start = time.perf_counter()
        delivered = 0
        while True:
            for block in iter_file_blocks(self.path, self.block_seconds):
                if self.stop.is_set():
                    return
                delivered += len(block)
                if self.realtime:
                    due = start + delivered / self.sample_rate
                    delay = due - time.perf_counter()
                    if delay > 0 and self.stop.wait(delay):
                        return
                    yield block, due
                else:
                    yield block, time.perf_counter()
            if not self.loop:
                return
