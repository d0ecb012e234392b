"""ADFF-C: causal attention-based deep feature fusion (Huang et al., Interspeech 2022; spec models.md §4.4).

Per 0.5 s frame, the ``[25, 64]`` log-mel patch is cut into ``chunks`` equal time slices stacked as
channels (the paper's "multi-channel input slicing": 5 x 5 STFT frames -> ``[5, 5, 64]``), which
shrinks the map the convs slide over. A VGG-style SFLM (conv-BN-ReLU blocks, pooling on frequency
only so the short time axis survives) yields taps at three levels; TFLM gives each tap SE channel
attention and pools it, and the concatenated taps (the ESTF) are projected to ``d``. The temporal
part of TFLM is a unidirectional GRU per window (newest 5/10/20 frames, last state), fused by MCA
scale attention.

Departures from the spec, for per-hop cost and our front end:

* one ``[25, 64]`` patch per frame and 5 chunks of 5 STFT frames (spec: three raw windows of 63/125/250
  x 128 mel frames cut into 4 chunks); the multi-scale part moves to the frame sequence;
* one conv per VGG block with 16/24/32 channels (spec: two convs, 64/128/256/256);
* the GRU runs across frames (one step per 0.5 s) instead of across the STFT frames inside a window,
  hidden 96 (spec 128); ESTF -> 96-d (spec 384 -> 256).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from emotrack.models.blocks import MultiScaleContexts, SqueezeExcite, conv_bn_relu, per_frame
from emotrack.models.common import MultiScaleFusion, StreamingModel


class SFLM(nn.Module):
    """VGG-style spatial feature learning over the chunk-stacked patch; returns one map per level."""

    def __init__(self, c_in: int, channels: Sequence[int]) -> None:
        super().__init__()
        blocks = []
        for c_out in channels:
            blocks.append(nn.Sequential(conv_bn_relu(c_in, c_out, 3, 1), nn.MaxPool2d((1, 2))))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for block in self.blocks:
            x = block(x)
            taps.append(x)
        return taps


class ADFFEncoder(nn.Module):
    """``[time, mel]`` patch -> chunks as channels -> SFLM taps -> SE + pooling -> ESTF -> ``d``."""

    def __init__(self, frames_per_hop: int, chunks: int, channels: Sequence[int], d: int) -> None:
        super().__init__()
        if frames_per_hop % chunks:
            raise ValueError(f"chunks={chunks} must divide frames_per_hop={frames_per_hop}")
        self.chunks = chunks
        self.sflm = SFLM(chunks, channels)
        self.se = nn.ModuleList(SqueezeExcite(c) for c in channels)
        self.project = nn.Sequential(nn.Linear(2 * sum(channels), d), nn.LayerNorm(d), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, f = x.shape
        x = x.reshape(n, self.chunks, t // self.chunks, f)  # channel c = STFT frames [c*k, (c+1)*k)
        pooled = []
        for se, tap in zip(self.se, self.sflm(x), strict=True):
            tap = se(tap)
            pooled += [tap.mean((2, 3)), tap.amax((2, 3))]
        return self.project(torch.cat(pooled, dim=1))


class ADFF(StreamingModel):
    """ADFF-C: chunk-stacked VGG/SE frame encoder, multi-scale causal GRUs and MCA fusion.

    Parameters
    ----------
    n_mels, frames_per_hop : int
        Front-end patch size (LogMel defaults: 64 mels, 25 STFT frames per hop).
    chunks : int
        Time slices stacked as input channels; must divide ``frames_per_hop``.
    channels : list of int
        Conv channels of the SFLM blocks (one tap per block).
    d, hidden, layers, dropout :
        Embedding size and GRU sizes.
    """

    frontend = "logmel"

    def __init__(
        self,
        n_mels: int = 64,
        frames_per_hop: int = 25,
        chunks: int = 5,
        channels: Sequence[int] = (16, 24, 32),
        d: int = 96,
        hidden: int = 96,
        layers: int = 1,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.encoder = ADFFEncoder(frames_per_hop, chunks, list(channels), d)
        self.scales = MultiScaleContexts(d, hidden, layers, dropout, cell="gru")
        self.fusion = MultiScaleFusion(hidden)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        return per_frame(self.encoder, frames, 2)

    def temporal(self, emb: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.fusion(self.scales(emb, mask))}
