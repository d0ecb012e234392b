"""Raw waveform front end (SincNet): each frame is the hop's samples themselves."""

from __future__ import annotations

from typing import Any

import numpy as np

from emotrack.frontends.base import FrontEnd


class Wave(FrontEnd):
    """Identity front end at ``sample_rate`` (default 16 kHz): frame = the 0.5 s hop of samples."""

    name = "wave"

    def __init__(self, sample_rate: int = 16000) -> None:
        super().__init__(sample_rate)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return (self.hop_length,)

    def params(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate}

    def reset(self) -> None:
        pass

    def process(self, hop: np.ndarray) -> np.ndarray:
        return np.asarray(hop, np.float32).copy()
