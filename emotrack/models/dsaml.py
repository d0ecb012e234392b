"""DSAML-C: causal dual/tri-scale attention model (Zhang et al., AAAI 2025; spec models.md §2.10).

Per 0.5 s frame, the DSAML "adapter" (two small convs, a 1x1 conv to one channel, FC) turns the
``[25, 64]`` log-mel patch into a ``d``-dim vector. One small transformer with shared weights runs
three times over the 20-frame context with causal band masks ``0 <= i - j < L`` for L = 5, 10, 20
(2.5/5/10 s); the newest position of each pass is fused by MCA scale attention (one attention per
output) after a small predictor. The L = 20 pass is the global path (no ImageBind: its embedding
covers the future in the original and is far too heavy per hop).

The last layer's head-averaged attention maps are returned as ``"attn"`` ``[B, 3, T, T]`` (with
``"attn_valid"`` ``[B, T]``) so training can add :func:`diagonal_attention_loss` (targets 0.9/0.5/0.1).

Departures from the spec, for per-hop cost:

* LogMel 25 x 64 per hop (spec 51 x 128); adapter 8/16 channels as in the code, output 64-d (spec 1024);
* 2 encoder layers, 4 heads, d = 64, FFN 128 (spec 3 / 16 / 1024 / 2048);
* relative position as a learned per-head bias per distance (T5-style) instead of BERT's
  query-dependent ``relative_key`` embeddings; only distances 0..T-1 exist under causal masks;
* no global ImageBind vector and no fusion layer; predictor = newest position only (spec option).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from emotrack.models.blocks import conv_bn_relu, per_frame
from emotrack.models.common import WINDOWS, MultiScaleFusion, StreamingModel

DIAGONAL_TARGETS = (0.9, 0.5, 0.1)
"""Target diagonal attention for the 5/10/20-frame bands: short bands should look at the current frame."""


def band_masks(n_frames: int, windows: Sequence[int]) -> torch.Tensor:
    """``[S, T, T]`` bool: ``M_L[i, j] = 0 <= i - j < L`` (causal band of ``L`` frames incl. the current one)."""
    lag = torch.arange(n_frames)[:, None] - torch.arange(n_frames)[None, :]
    return torch.stack([(lag >= 0) & (lag < w) for w in windows])


class Adapter(nn.Module):
    """DSAML local extractor: conv(3x1) 8 ch -> pool -> conv 3x3 16 ch -> pool -> 1x1 to 1 ch -> FC."""

    def __init__(self, frames_per_hop: int, n_mels: int, d: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            conv_bn_relu(1, 8, (3, 1), (1, 0)), nn.MaxPool2d(2, ceil_mode=True),
            conv_bn_relu(8, 16, 3, 1), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(16, 1, 1),
        )  # fmt: skip
        size = math.ceil(math.ceil(frames_per_hop / 2) / 2) * math.ceil(math.ceil(n_mels / 2) / 2)
        self.project = nn.Sequential(nn.Linear(size, d), nn.LayerNorm(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.convs(x.unsqueeze(1)).flatten(1))


class MaskedSelfAttention(nn.Module):
    """Multi-head self-attention with an explicit boolean mask and a learned relative-distance bias.

    Written out by hand (no ``nn.MultiheadAttention``/``nn.TransformerEncoder``) so the legacy ONNX
    exporter produces a graph that is valid for any batch size (probe.md §2).
    """

    def __init__(self, d: int, heads: int, n_frames: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.rel_bias = nn.Parameter(torch.zeros(heads, n_frames))  # bias by distance i - j >= 0
        lag = (torch.arange(n_frames)[:, None] - torch.arange(n_frames)[None, :]).clamp(min=0)
        self.register_buffer("lag", lag, persistent=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``[N, T, d]``, ``allowed`` ``[N, 1, T, T]`` -> (output ``[N, T, d]``, probs ``[N, H, T, T]``)."""
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, self.dh).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.dh) + self.rel_bias[:, self.lag]
        probs = torch.softmax(scores.masked_fill(~allowed, -1e9), dim=-1)
        y = (self.drop(probs) @ v).transpose(1, 2).reshape(n, t, d)
        return self.out(y), probs


class EncoderLayer(nn.Module):
    """Post-LayerNorm transformer block (BERT-style, as in the DSAML code)."""

    def __init__(self, d: int, heads: int, ffn: int, n_frames: int, dropout: float) -> None:
        super().__init__()
        self.attn = MaskedSelfAttention(d, heads, n_frames, dropout)
        self.norm1 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Linear(ffn, d))
        self.norm2 = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, probs = self.attn(x, allowed)
        x = self.norm1(x + self.drop(a))
        x = self.norm2(x + self.drop(self.ffn(x)))
        return x, probs


class DSAML(StreamingModel):
    """DSAML-C: adapter per frame, shared causal transformer over 5/10/20-frame bands, MCA fusion.

    Parameters
    ----------
    n_mels, frames_per_hop : int
        Front-end patch size (LogMel defaults: 64 mels, 25 STFT frames per hop).
    d, heads, layers, ffn, dropout :
        Transformer sizes.
    context_frames : int
        Frames per context (the band masks and relative bias are built for it).
    """

    frontend = "logmel"

    def __init__(
        self,
        n_mels: int = 64,
        frames_per_hop: int = 25,
        d: int = 64,
        heads: int = 4,
        layers: int = 2,
        ffn: int = 128,
        dropout: float = 0.1,
        context_frames: int = 20,
    ) -> None:
        super().__init__()
        self.context_frames = context_frames
        self.windows = tuple(w for w in WINDOWS if w <= context_frames)
        self.adapter = Adapter(frames_per_hop, n_mels, d)
        self.layers = nn.ModuleList(EncoderLayer(d, heads, ffn, context_frames, dropout) for _ in range(layers))
        self.register_buffer("bands", band_masks(context_frames, self.windows), persistent=False)
        self.register_buffer("eye", torch.eye(context_frames, dtype=torch.bool), persistent=False)
        self.predictor = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Dropout(dropout))
        self.fusion = MultiScaleFusion(d)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        return per_frame(self.adapter, frames, 2)

    def temporal(self, emb: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        b, t, d = emb.shape
        s = len(self.windows)
        emb = emb * mask.unsqueeze(-1)  # padding frames carry no signal
        # A key is visible if it is in the band and real; a padded query still sees itself, so no row
        # is empty, and no real query ever sees padding (real frames are a suffix of the context).
        valid_key = (mask > 0)[:, None, None, :]  # [B, 1, 1, T]
        allowed = self.bands[None] & (valid_key | self.eye)  # [B, S, T, T]
        x = emb.unsqueeze(1).expand(b, s, t, d).reshape(b * s, t, d)  # the S passes share one batch
        allowed = allowed.reshape(b * s, 1, t, t)
        probs = allowed.float()
        for layer in self.layers:
            x, probs = layer(x, allowed)
        newest = self.predictor(x[:, -1].reshape(b, s, d))
        return {
            "logits": self.fusion(newest),
            "attn": probs.mean(1).reshape(b, s, t, t),
            "attn_valid": mask,
        }

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the prediction head (predictor + scale fusion), adapted in fast personalisation."""
        return [*self.predictor.parameters(), *self.fusion.parameters()]


def diagonal_attention_loss(
    out: dict[str, torch.Tensor], targets: Sequence[float] = DIAGONAL_TARGETS
) -> torch.Tensor:
    """DSAML's diagonal attention-map loss over the 5/10/20 bands (spec §2.3, §2.10).

    For each band, the MSE between the diagonal of the last layer's head-averaged attention map and
    its target, over real (unpadded) rows only; the per-band terms are summed as in the paper
    (``L_att = MSE(diag A_local, α) + MSE(diag A_global, β)``). High targets for short bands keep the
    local pass focused on the current frame; a low one for the long band pushes it to look back.

    Parameters
    ----------
    out : dict
        :meth:`DSAML.outputs` result with ``"attn"`` ``[B, S, T, T]`` and ``"attn_valid"`` ``[B, T]``.
    targets : sequence of float
        One target per band, in the model's window order.
    """
    attn, valid = out["attn"], out["attn_valid"]
    diag = attn.diagonal(dim1=-2, dim2=-1)  # [B, S, T]
    target = torch.as_tensor(targets, dtype=diag.dtype, device=diag.device)[None, :, None]
    weight = valid[:, None, :].expand_as(diag)
    per_band = ((diag - target) ** 2 * weight).sum((0, 2)) / weight.sum((0, 2)).clamp_min(1.0)
    return per_band.sum()
