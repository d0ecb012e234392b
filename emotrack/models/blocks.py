"""Building blocks shared by the DAMFF-C, ADFF-C, DSAML-C and SincNet-C models.

Kept apart from :mod:`emotrack.models.common` (which the MCA model owns) so zoo models can share
per-frame helpers and multi-scale heads without touching the reference model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from emotrack.models.common import WINDOWS, AttentionLSTM, MultiScaleFusion


def per_frame(fn: Callable[[torch.Tensor], torch.Tensor], frames: torch.Tensor, n_dims: int) -> torch.Tensor:
    """Apply ``fn`` to every frame independently: ``[B, T, *frame]`` -> ``[B, T, D]``.

    Folding time into the batch axis is what guarantees "no mixing across time": a frame's embedding
    cannot depend on its neighbours, so streaming and offline encodes give the same numbers.

    Parameters
    ----------
    fn : callable
        Maps ``[N, *frame]`` to ``[N, ...]`` (flattened to ``D`` afterwards).
    frames : torch.Tensor
        ``[B, T, *frame]``.
    n_dims : int
        Number of frame dimensions (2 for log-mel patches, 1 for waveforms).
    """
    b, t = frames.shape[0], frames.shape[1]
    out = fn(frames.reshape(-1, *frames.shape[2 : 2 + n_dims]))
    return out.reshape(b, t, -1)


def conv_bn_relu(c_in: int, c_out: int, kernel: int | tuple[int, int], padding: int | tuple[int, int]) -> nn.Sequential:
    """Conv2d -> BatchNorm -> ReLU (no conv bias: BN supplies it, and folds into the conv in ONNX)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class SqueezeExcite(nn.Module):
    """SE channel attention (Hu et al. 2018): global pool -> bottleneck MLP -> sigmoid channel gates."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        mid = max(channels // reduction, 4)
        self.gate = nn.Sequential(nn.Linear(channels, mid), nn.ReLU(), nn.Linear(mid, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.gate(x.mean((2, 3)))
        return x * w[:, :, None, None]


class LastStateGRU(nn.Module):
    """Unidirectional GRU summarised by its state at the newest frame (ADFF-C spec §4.4: "last state")."""

    def __init__(self, d_in: int, hidden: int, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.gru = nn.GRU(d_in, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # noqa: ARG002 - same call as A-LSTM
        h, _ = self.gru(x)
        return h[:, -1]


class MultiScaleContexts(nn.Module):
    """One recurrent summary per window (newest 5/10/20 frames) -> ``[B, S, H]`` context vectors.

    Unlike :class:`~emotrack.models.common.MultiScaleALSTM` it stops before the fusion, so a model
    can put several heads (V-A, quadrants) on the same contexts.

    Parameters
    ----------
    d_in, hidden, layers, dropout :
        Recurrent sizes; ``dropout`` is also applied to the returned contexts.
    windows : sequence of int
        Window lengths in frames, all ending at the newest frame.
    cell : {"alstm", "gru"}
        ``alstm``: MCA's attention LSTM (padding masked in the attention); ``gru``: last GRU state.
    """

    def __init__(
        self,
        d_in: int,
        hidden: int = 96,
        layers: int = 2,
        dropout: float = 0.3,
        windows: Sequence[int] = WINDOWS,
        cell: str = "alstm",
    ) -> None:
        super().__init__()
        self.windows = tuple(windows)
        make = {"alstm": AttentionLSTM, "gru": LastStateGRU}[cell]
        self.branches = nn.ModuleList(make(d_in, hidden, layers, dropout) for _ in self.windows)
        self.drop = nn.Dropout(dropout)

    def forward(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        emb = emb * mask.unsqueeze(-1)  # padding frames carry no signal, whatever the frames held
        contexts = [branch(emb[:, -w:], mask[:, -w:]) for branch, w in zip(self.branches, self.windows, strict=True)]
        return self.drop(torch.stack(contexts, dim=1))


__all__ = [
    "LastStateGRU",
    "MultiScaleContexts",
    "MultiScaleFusion",
    "SqueezeExcite",
    "conv_bn_relu",
    "per_frame",
]
