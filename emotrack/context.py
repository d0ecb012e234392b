"""The model's view of the stream: the newest ``n`` frames plus a validity mask.

:class:`FrameContext` is the streaming ring used hop by hop; :func:`unfold` builds the same contexts
for a whole sequence at once (training, parity checks). Both left-pad with zeros and mask the
padding, so the first 10 s of a stream look the same online and offline.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FrameContext", "unfold"]


class FrameContext:
    """Fixed-size ring of the newest frames, oldest first (preallocated; no per-hop allocation)."""

    def __init__(self, n_frames: int, frame_shape: tuple[int, ...]) -> None:
        self.frames = np.zeros((1, n_frames, *frame_shape), np.float32)
        self.mask = np.zeros((1, n_frames), np.float32)

    def reset(self) -> None:
        self.frames[:] = 0.0
        self.mask[:] = 0.0

    def push(self, frame: np.ndarray) -> None:
        """Append the newest frame, dropping the oldest."""
        self.frames[0, :-1] = self.frames[0, 1:]
        self.frames[0, -1] = frame
        self.mask[0, :-1] = self.mask[0, 1:]
        self.mask[0, -1] = 1.0


def unfold(frames: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Contexts ending at every frame of a sequence: ``[N, *f]`` -> ``([N, n, *f], [N, n])``."""
    n = len(frames)
    padded = np.concatenate([np.zeros((n_frames - 1, *frames.shape[1:]), np.float32), frames.astype(np.float32)])
    valid = np.concatenate([np.zeros(n_frames - 1, np.float32), np.ones(n, np.float32)])
    idx = np.arange(n)[:, None] + np.arange(n_frames)[None, :]
    return padded[idx], valid[idx]
