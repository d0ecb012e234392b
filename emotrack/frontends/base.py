"""The front-end interface and feature normalisation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from emotrack import HOP_SECONDS


class FrontEnd(ABC):
    """One feature frame per hop of ``hop_length`` mono samples at ``sample_rate``.

    Subclasses keep any history they need (e.g. the STFT overlap) and must never look past the
    end of the current hop, so each frame depends only on audio up to the hop's last sample.
    """

    name: str = ""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = int(sample_rate)
        self.hop_length = int(round(HOP_SECONDS * self.sample_rate))

    @property
    @abstractmethod
    def frame_shape(self) -> tuple[int, ...]:
        """Shape of one frame (without the time axis)."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Constructor keyword arguments, as stored in model metadata."""

    @abstractmethod
    def reset(self) -> None:
        """Forget all history (start of a new stream)."""

    @abstractmethod
    def process(self, hop: np.ndarray) -> np.ndarray:
        """Return the frame for the next ``hop_length`` samples."""

    def use_runtime(self, provider: str, threads: int) -> None:
        """Run on the model's ONNX Runtime provider (``cpu``/``cuda``) and thread count.

        Only front ends that run a network of their own (musicnn) have anything to change.
        """
        return None

    @staticmethod
    def process_many(frontends: Sequence[FrontEnd], hops: np.ndarray) -> np.ndarray:
        """The next hop of each of several streams (one front end each): ``[N, hop_length]`` -> ``[N, *frame]``.

        Front ends that run a network (musicnn) override this with one batched call for all streams.
        """
        return np.stack([fe.process(hop) for fe, hop in zip(frontends, hops, strict=True)])

    def process_hops(self, hops: np.ndarray) -> np.ndarray:
        """Frames for several consecutive hops of this stream: ``[K, hop_length]`` -> ``[K, *frame]``.

        Front ends that run a network override this with one call on all ``K`` hops.
        """
        out = np.empty((len(hops), *self.frame_shape), np.float32)
        for i, hop in enumerate(hops):
            out[i] = self.process(hop)
        return out

    def process_signal(self, signal: np.ndarray) -> np.ndarray:
        """Frames for a whole signal from a fresh state: ``(n_hops, *frame_shape)``.

        A trailing partial hop is dropped, as in streaming.
        """
        self.reset()
        n = len(signal) // self.hop_length
        return self.process_hops(np.asarray(signal[: n * self.hop_length], np.float32).reshape(n, self.hop_length))


class Normalizer:
    """Feature standardisation ``(x - mean) / std`` with statistics from the training set.

    ``mean`` and ``std`` broadcast against one frame (e.g. one value per mel band).
    """

    def __init__(self, mean: Any = 0.0, std: Any = 1.0) -> None:
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        if np.any(self.std <= 0):
            raise ValueError("normalisation std must be positive")

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return ((frames - self.mean) / self.std).astype(np.float32, copy=False)

    @classmethod
    def fit(cls, frames: np.ndarray, axes: tuple[int, ...], min_std: float | np.ndarray = 1e-5) -> Normalizer:
        """Statistics over ``axes`` of a stack of frames (e.g. all but the mel axis).

        ``min_std`` floors the scale, so a feature that barely varies in the training set is not blown up
        by a huge factor at run time; an array gives each feature its own floor.
        """
        mean = frames.mean(axis=axes, dtype=np.float64)
        std = frames.std(axis=axes, dtype=np.float64)
        return cls(mean.astype(np.float32), np.maximum(std, min_std).astype(np.float32))

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Normalizer:
        return cls() if not d else cls(d["mean"], d["std"])
