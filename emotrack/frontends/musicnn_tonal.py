"""musicnn embeddings of two windows plus harmony: the default model's front end since ``mca-musicnn`` 0.4.

Why each part:

* the musicnn embedding of the newest 2.9 s (:class:`~emotrack.frontends.musicnn.Musicnn`): transfer from a
  million tagged songs, the best single feature for produced recordings (4Q);
* a second embedding, the same network's back end on the newest ``recent_frames`` frames only (1 s by
  default): the 2.9 s window still holds the old music for ~3 s after a cut, the short one for ~1.5 s, so
  a tracker can see a change sooner (the activations are shared: it costs one more back-end row);
* the mean and spread over the hop's 25 rows of the 14 tonal columns
  (:class:`~emotrack.frontends.tonal.TonalColumns`: chroma and major/minor key clarity): musicnn was trained
  on tags, not harmony, and misses mode; on VGMIDI's piano a linear read-out of the 2.9 s embedding reaches
  valence CCC 0.35, with these columns 0.54 (piece-grouped CV, a causal 10 s mean of either).

One frame: ``[2 * width + 28]`` (``recent_frames=0``: ``[width + 28]``), all level-free (musicnn's input
is log-compressed mel, chroma is normalised), so no gain augmentation applies.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emotrack.frontends.musicnn import HOP_LENGTH_STFT, N_FRAMES, SAMPLE_RATE, WIDTHS, Musicnn
from emotrack.frontends.tonal import N_TONAL, TonalColumns

__all__ = ["TONAL_ROW_HOP", "MusicnnTonal", "tonal_summary"]

TONAL_ROW_HOP = 320
"""Samples per tonal row (20 ms, as :class:`~emotrack.frontends.tonal.LogMelTonal`'s rows): 25 rows a hop."""


class MusicnnTonal(Musicnn):
    """Streaming musicnn embeddings of the newest 2.9 s and newest ``recent_frames``, plus tonal statistics.

    Parameters
    ----------
    recent_frames : int
        The short pooling window in musicnn frames (64: 1.0 s); 0 leaves it out.
    chroma_fft, chroma_fmin, chroma_fmax, key_seconds :
        :class:`~emotrack.frontends.tonal.TonalColumns` settings.
    sample_rate, layer, weights, stft_hop :
        :class:`~emotrack.frontends.musicnn.Musicnn` settings.
    """

    name = "musicnn_tonal"

    def __init__(self, sample_rate: int = SAMPLE_RATE, layer: str = "penultimate", weights: str = "msd",
                 stft_hop: int = HOP_LENGTH_STFT, recent_frames: int = 64, chroma_fft: int = 4096,
                 chroma_fmin: float = 65.0, chroma_fmax: float = 2100.0, key_seconds: float = 5.0) -> None:
        super().__init__(sample_rate, layer, weights, stft_hop)
        recent_frames = int(recent_frames)
        if not 0 <= recent_frames < N_FRAMES:
            raise ValueError(f"recent_frames must be 0 (off) or below the {N_FRAMES}-frame window, got {recent_frames}")
        self.recent_frames = recent_frames
        self.windows = (N_FRAMES, recent_frames) if recent_frames else (N_FRAMES,)
        self.tonal = TonalColumns(self.sample_rate, self.hop_length, TONAL_ROW_HOP, chroma_fft, chroma_fmin,
                                  chroma_fmax, key_seconds)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return (len(self.windows) * WIDTHS[self.layer] + 2 * N_TONAL,)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "recent_frames": self.recent_frames, **self.tonal.params()}

    def reset(self) -> None:
        super().reset()
        self.tonal.reset()

    def __deepcopy__(self, memo: dict[int, Any]) -> MusicnnTonal:
        clone = super().__deepcopy__(memo)
        clone.tonal = self.tonal.copy()
        return clone

    def _append(self, embeddings: np.ndarray, hops: np.ndarray) -> np.ndarray:
        rows = np.stack([self.tonal.process(hop) for hop in hops])  # [K, 25, 14]
        return np.concatenate([embeddings, tonal_summary(rows)], axis=-1)


def tonal_summary(rows: np.ndarray) -> np.ndarray:
    """Per-hop mean and spread of tonal rows ``[..., rows, 14]`` -> ``[..., 28]`` (the frame's last columns)."""
    return np.concatenate([rows.mean(-2), rows.std(-2)], axis=-1).astype(np.float32)


