"""Lock-free single-producer/single-consumer audio ring buffer.

The producer is the audio callback: :meth:`RingBuffer.write` only copies into preallocated arrays and
bumps counters (plain int stores, atomic under the GIL), so it never blocks or allocates arrays. The
consumer (the hop scheduler thread) reads everything new with :meth:`RingBuffer.read`. If the
consumer falls more than ``capacity`` frames behind, the oldest audio is overwritten and counted in
:attr:`RingBuffer.dropped` instead of stalling the callback.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RingBuffer"]


class RingBuffer:
    """Multichannel float32 ring with the arrival time of each write.

    Parameters
    ----------
    capacity : int
        Frames held (size it to a few seconds of device audio).
    channels : int
        Channels per frame, as delivered by the device.
    stamps : int
        How many recent writes keep their arrival time.
    """

    def __init__(self, capacity: int, channels: int, stamps: int = 1024) -> None:
        self.capacity = int(capacity)
        self.channels = int(channels)
        self._data = np.zeros((self.capacity, self.channels), np.float32)
        self._stamp_end = np.zeros(stamps, np.int64)
        self._stamp_time = np.zeros(stamps, np.float64)
        self._writes = 0
        self._written = 0  # total frames written; published last by the producer
        self._read = 0  # total frames consumed; touched only by the consumer
        self.dropped = 0  # frames lost because the consumer fell behind

    @property
    def written(self) -> int:
        return self._written

    def available(self) -> int:
        """Frames written but not yet read (may exceed capacity when audio was lost)."""
        return self._written - self._read

    def write(self, block: np.ndarray, t_last: float) -> None:
        """Producer side: copy ``block`` (``(frames, channels)``) in; ``t_last`` = arrival time of its last frame."""
        n = len(block)
        if n > self.capacity:  # keep only what fits; the rest counts as lost
            block = block[n - self.capacity :]
            self._written += n - self.capacity
            n = self.capacity
        pos = self._written % self.capacity
        first = min(n, self.capacity - pos)
        self._data[pos : pos + first] = block[:first]
        if first < n:
            self._data[: n - first] = block[first:]
        k = self._writes % len(self._stamp_end)
        self._stamp_end[k] = self._written + n
        self._stamp_time[k] = t_last
        self._writes += 1
        self._written += n

    def read(self) -> tuple[np.ndarray, float] | None:
        """Consumer side: all new frames (a copy) and the arrival time of the last one, or ``None``."""
        end = self._written
        start = self._read
        if end == start:
            return None
        if end - start > self.capacity:
            self.dropped += end - start - self.capacity
            start = end - self.capacity
        n = end - start
        pos = start % self.capacity
        first = min(n, self.capacity - pos)
        out = np.empty((n, self.channels), np.float32)
        out[:first] = self._data[pos : pos + first]
        out[first:] = self._data[: n - first]
        lapped = self._written - start - self.capacity  # frames the producer overwrote while we copied
        if lapped > 0:
            self.dropped += lapped
        self._read = end
        return out, self._time_of(end)

    def _time_of(self, end: int) -> float:
        """Arrival time of the write that ended at ``end`` (or the closest later one)."""
        writes = self._writes
        best = float("nan")
        for i in range(writes - 1, max(-1, writes - len(self._stamp_end)) - 1, -1):
            k = i % len(self._stamp_end)
            if self._stamp_end[k] < end:
                break
            best = float(self._stamp_time[k])
            if self._stamp_end[k] == end:
                break
        return best
