"""Network audio (web radio, an Icecast feed from another room, HLS) as a source, through PyAV/FFmpeg.

A decoder thread reads the URL, converts to mono float32 at a fixed rate and hands blocks to the consumer through
a bounded queue, so a stream that stalls or drops never blocks the audio thread or the other streams. Delivery
is paced to real time by sample count (a live stream arrives at that pace anyway; a file behind a URL would
otherwise be read in one burst). When the connection fails or the stream ends, the thread reconnects with
exponential back-off (1 s doubling to 30 s); the gap is counted in :attr:`reconnects` and :attr:`gap_s`, and the
stream's hops simply continue after it (their ``stream_time`` counts audio, not wall time).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator

import numpy as np

from emotrack.errors import ConfigError

__all__ = ["NET_SAMPLE_RATE", "UrlSource"]

logger = logging.getLogger(__name__)

NET_SAMPLE_RATE = 44100
"""Rate the decoder resamples every network stream to (the tracker then resamples to the model's rate)."""

BACKOFF_S = (1.0, 30.0)
"""First and longest wait between reconnection attempts."""


def _require_av():
    try:
        import av
    except ImportError:
        raise ConfigError("--url needs the net extra (PyAV): pip install 'emotrack[net]'") from None
    return av


class UrlSource:
    """Stream audio from ``url`` (anything FFmpeg opens: http(s) mp3/ogg/aac, Icecast, HLS ``.m3u8``).

    Parameters
    ----------
    url : str
        The stream's address.
    stop : threading.Event, optional
        Set to end the stream.
    block_seconds : float
        Size of the blocks handed on (default 0.05 s).
    open_timeout : float
        Seconds to wait for the server on each (re)connection attempt.
    """

    def __init__(self, url: str, stop: threading.Event | None = None, block_seconds: float = 0.05,
                 open_timeout: float = 10.0) -> None:
        self._av = _require_av()
        self.url = url
        self.stop = stop or threading.Event()
        self.sample_rate = NET_SAMPLE_RATE
        self.channels = 1
        self.block = max(1, round(block_seconds * self.sample_rate))
        self.open_timeout = open_timeout
        self.dropped = 0
        self.status_flags = 0
        self.reconnects = 0
        """Times the stream was lost and reconnected."""
        self.gap_s = 0.0
        """Wall seconds without audio across all reconnections."""
        self.connected = False
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=200)  # 10 s of blocks
        self._thread: threading.Thread | None = None

    @property
    def description(self) -> str:
        return f"network stream {self.url}"

    def __enter__(self) -> UrlSource:
        self._thread = threading.Thread(target=self._run, name=f"url {self.url}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # The decoder thread

    def _decode(self) -> Iterator[np.ndarray]:
        """Mono float32 blocks of one connection, until it ends or fails."""
        av = self._av
        container = av.open(self.url, timeout=self.open_timeout)
        try:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise ValueError("no audio in the stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sample_rate)
            self.connected = True
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                if self.stop.is_set():
                    return
        finally:
            self.connected = False
            container.close()

    def _run(self) -> None:
        wait = BACKOFF_S[0]
        lost_at: float | None = None
        pending = np.zeros(0, np.float32)
        while not self.stop.is_set():
            try:
                for samples in self._decode():
                    if lost_at is not None:
                        self.gap_s += time.monotonic() - lost_at
                        logger.warning("network stream %s is back after %.1f s", self.url, time.monotonic() - lost_at)
                        lost_at, wait = None, BACKOFF_S[0]
                    pending = np.concatenate([pending, samples])
                    while len(pending) >= self.block:
                        self._put(pending[: self.block])
                        pending = pending[self.block:]
                    if self.stop.is_set():
                        return
                reason = "the stream ended"
            except Exception as exc:  # FFmpeg raises many kinds (HTTP, timeout, decode); all mean "reconnect"
                reason = str(exc) or type(exc).__name__
            if self.stop.is_set():
                return
            if lost_at is None:
                lost_at = time.monotonic()
                self.reconnects += 1
                logger.warning("network stream %s lost (%s): reconnecting", self.url, reason)
            if self.stop.wait(wait):
                return
            wait = min(2 * wait, BACKOFF_S[1])

    def _put(self, block: np.ndarray) -> None:
        while not self.stop.is_set():
            try:
                self._queue.put(block, timeout=0.2)
                return
            except queue.Full:
                continue

    # The consumer side

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        """Blocks ``(frames, 1)`` paced to real time by sample count; a gap restarts the pacing clock."""
        start, delivered = time.perf_counter(), 0
        while not self.stop.is_set():
            try:
                block = self._queue.get(timeout=0.2)
            except queue.Empty:
                start, delivered = time.perf_counter(), 0  # nothing came: pace afresh from the next block
                continue
            delivered += len(block)
            due = start + delivered / self.sample_rate
            delay = due - time.perf_counter()
            if delay > 0 and self.stop.wait(delay):
                return
            yield block[:, None], due if delay > 0 else time.perf_counter()
