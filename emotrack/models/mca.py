"""MCA-C: causal multi-scale context attention LSTM (Ma et al., ACM MM 2017; spec models.md §1.7).

Front end ``logmel``: each 0.5 s frame is a ``[25, 64]`` log-mel patch, summarised in-graph by its
per-band mean, standard deviation and mean absolute frame-to-frame change (a log-mel analogue of the
paper's Smile-260 mean/std functionals) plus the patch's onset envelope (positive spectral flux
summed over bands at each 20 ms step: rhythm and attack density, which arousal depends on and which
per-band averages blur), then projected to ``d`` dims. Three A-LSTMs read the newest
5, 10 and 20 frames; their context vectors are fused by per-output scale attention.
"""

from __future__ import annotations

import torch
from torch import nn

from emotrack.models.common import MultiScaleALSTM, StreamingModel


def patch_statistics(frames: torch.Tensor) -> torch.Tensor:
    """``[..., time, bands]`` -> ``[..., 3 * bands + time - 1]``.

    Mean, std and mean |delta| over time per band, then the onset envelope (mean positive delta over
    bands) at each of the ``time - 1`` steps. Only elementwise ops and reductions: ONNX-friendly.
    """
    mean = frames.mean(-2)
    std = (frames - mean.unsqueeze(-2)).pow(2).mean(-2).clamp_min(1e-8).sqrt()
    delta = frames[..., 1:, :] - frames[..., :-1, :]
    flux = delta.abs().mean(-2)
    onset = torch.relu(delta).mean(-1)
    return torch.cat([mean, std, flux, onset], dim=-1)


class MCA(StreamingModel):
    """Multi-scale context attention over A-LSTMs (joint V/A output)."""

    frontend = "logmel"

    def __init__(
        self,
        n_mels: int = 64,
        n_steps: int = 25,
        d: int = 64,
        hidden: int = 64,
        layers: int = 2,
        dropout: float = 0.3,
    ):
        super().__init__()
        self.project = nn.Sequential(
            nn.Linear(3 * n_mels + n_steps - 1, d), nn.LayerNorm(d), nn.GELU(), nn.Dropout(dropout)
        )
        self.head = MultiScaleALSTM(d, hidden, layers, dropout)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        return self.project(patch_statistics(frames))

    def temporal(self, emb: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.head(emb, mask)}
