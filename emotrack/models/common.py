"""Pieces shared by the zoo: the streaming base class and MCA-style multi-scale fusion.

A model is split into a per-frame ``encode`` (frames -> embeddings, no mixing across time) and a
causal ``temporal`` head over the newest ``context_frames`` embeddings. The split lets training encode
a whole clip once and slide the context over the embeddings, which is the same computation as
running the full graph hop by hop.
"""

from __future__ import annotations

import torch
from torch import nn

WINDOWS = (5, 10, 20)
"""Context windows in 0.5 s frames (2.5, 5 and 10 s), all ending at the current hop (MCA paper)."""


class StreamingModel(nn.Module):
    """Base class: ``forward(frames, mask) -> va`` (plus extra outputs via :meth:`outputs`)."""

    frontend: str = "logmel"
    frontends: tuple[str, ...] = ()
    """Other front ends the model can read (``frontend=`` keyword); empty: only :attr:`frontend`."""
    context_frames: int = 20
    extra_outputs: tuple[str, ...] = ()

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """``[B, T, *frame]`` -> ``[B, T, D]``, frame by frame."""
        raise NotImplementedError

    def temporal(self, emb: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """``[B, T, D]`` embeddings + ``[B, T]`` mask -> ``{"logits": [B, 2], ...}``; T = context_frames."""
        raise NotImplementedError

    def outputs(self, frames: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """All outputs of one context, including the training-only ones (``logits``, attention maps)."""
        return self.temporal(self.encode(frames), mask)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        out = self.outputs(frames, mask)
        va = torch.tanh(out["logits"])
        if not self.extra_outputs:
            return va
        return (va, *(out[name] for name in self.extra_outputs))


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax that gives zero weight where ``mask`` is 0 (at least one position must be valid)."""
    scores = scores.masked_fill(mask <= 0, -1e9)
    return torch.softmax(scores, dim=dim)


class AttentionLSTM(nn.Module):
    """A-LSTM (MCA paper Eq. 10-13): unidirectional LSTM, attention over its steps -> context vector."""

    def __init__(self, d_in: int, hidden: int, layers: int = 2, dropout: float = 0.3) -> None:
        super().__init__()
        self.lstm = nn.LSTM(d_in, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0)
        self.score = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(x)
        alpha = masked_softmax(torch.tanh(self.score(h)).squeeze(-1), mask)
        return torch.einsum("bt,bth->bh", alpha, h)


class MultiScaleFusion(nn.Module):
    """MCA fusion (Eq. 14-17) with one attention per output, since V favours long and A short context.

    ``contexts`` ``[B, S, H]`` (one vector per scale) -> logits ``[B, 2]``.
    """

    def __init__(self, hidden: int, n_out: int = 2) -> None:
        super().__init__()
        self.score = nn.Linear(hidden, n_out)
        self.heads = nn.Parameter(torch.empty(n_out, hidden))
        self.bias = nn.Parameter(torch.zeros(n_out))
        nn.init.xavier_uniform_(self.heads)

    def forward(self, contexts: torch.Tensor) -> torch.Tensor:
        beta = torch.softmax(torch.tanh(self.score(contexts)), dim=1)  # [B, S, n_out]
        fused = torch.einsum("bso,bsh->boh", beta, contexts)  # one fused vector per output
        return (fused * self.heads).sum(-1) + self.bias


class MultiScaleALSTM(nn.Module):
    """Three A-LSTM branches over the newest 5/10/20 embeddings, fused by :class:`MultiScaleFusion`."""

    def __init__(
        self, d_in: int, hidden: int = 96, layers: int = 2, dropout: float = 0.3, windows=WINDOWS, n_out: int = 2
    ):
        super().__init__()
        self.windows = tuple(windows)
        self.branches = nn.ModuleList(AttentionLSTM(d_in, hidden, layers, dropout) for _ in self.windows)
        self.fusion = MultiScaleFusion(hidden, n_out)
        self.drop = nn.Dropout(dropout)

    def forward(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        emb = emb * mask.unsqueeze(-1)  # padding frames carry no signal
        contexts = [branch(emb[:, -w:], mask[:, -w:]) for branch, w in zip(self.branches, self.windows, strict=True)]
        return self.fusion(self.drop(torch.stack(contexts, dim=1)))
