"""MCA-C: causal multi-scale context attention LSTM (Ma et al., ACM MM 2017; spec models.md §1.7).

Front end ``logmel``: each 0.5 s frame is a ``[25, 64]`` log-mel patch, summarised in-graph by its
per-band mean, standard deviation and mean absolute frame-to-frame change (a log-mel analogue of the
paper's Smile-260 mean/std functionals) plus the patch's onset envelope (positive spectral flux
summed over bands at each 20 ms step: rhythm and attack density, which arousal depends on and which
per-band averages blur), and (``extended``, the default) per-band max/min, sub-band spectral
contrast and loudness-envelope statistics; the vector is projected to ``d`` dims. Three A-LSTMs read
the newest 5, 10 and 20 frames; their context vectors are fused by per-output scale attention.

Defaults (d = hidden = 64, 2 layers, dropout 0.3) are smaller than the paper's h = 150: 4Q has only
~600 training clips, and the bundled model must stay small (< 1 MB, ~0.5 ms per hop on one CPU core).
"""

from __future__ import annotations

import torch
from torch import nn

from emotrack.frontends.musicnn import LAYERS as MUSICNN_LAYERS
from emotrack.frontends.tonal import N_TONAL
from emotrack.models.common import MultiScaleALSTM, StreamingModel

VECTOR_FRONTENDS = {
    "smile260": 260,
    "musicnn": MUSICNN_LAYERS["penultimate"],
    "musicnn_tonal": 2 * MUSICNN_LAYERS["penultimate"] + 2 * N_TONAL,  # MusicnnTonal with its defaults
}
"""Front ends whose frame is already one feature vector, with its default width."""

CONTRAST_GROUPS = 8
"""Sub-bands (of 8 mel bands each for 64 mels) for the spectral-contrast statistics."""


def patch_statistics(frames: torch.Tensor, extended: bool = True) -> torch.Tensor:
    """Summarise each log-mel patch ``[..., time, bands]`` into one vector (see :func:`statistics_dim`).

    Basic: mean, std and mean |delta| over time per band, then the onset envelope (mean positive delta
    over bands) at each of the ``time - 1`` steps. Extended adds what the projection cannot derive
    linearly from the basic set: per-band max and min over time (peaks/dips the mean blurs),
    spectral contrast per sub-band (peak minus mean and mean minus valley over its bands, averaged
    over time: tonal vs noisy texture), and loudness-envelope statistics (std and mean |delta| of the
    band-mean per step, mean spread across bands). In an artist-grouped 5-fold CV of a clip-level
    logistic regression on 4Q these extras raised weighted F1 from 0.61 to 0.65.
    Only elementwise ops and reductions, so the graph exports to ONNX (opset 17) unchanged.
    """
    mean = frames.mean(-2)
    std = (frames - mean.unsqueeze(-2)).pow(2).mean(-2).clamp_min(1e-8).sqrt()
    delta = frames[..., 1:, :] - frames[..., :-1, :]
    flux = delta.abs().mean(-2)
    onset = torch.relu(delta).mean(-1)
    parts = [mean, std, flux, onset]
    if extended:
        n_bands = frames.shape[-1]
        groups = frames.reshape(*frames.shape[:-1], CONTRAST_GROUPS, n_bands // CONTRAST_GROUPS)
        g_mean = groups.mean(-1)
        peak = (groups.amax(-1) - g_mean).mean(-2)
        valley = (g_mean - groups.amin(-1)).mean(-2)
        env = frames.mean(-1)
        env_std = (env - env.mean(-1, keepdim=True)).pow(2).mean(-1, keepdim=True).clamp_min(1e-8).sqrt()
        env_flux = (env[..., 1:] - env[..., :-1]).abs().mean(-1, keepdim=True)
        spread = (frames - frames.mean(-1, keepdim=True)).pow(2).mean(-1).clamp_min(1e-8).sqrt()
        parts += [frames.amax(-2), frames.amin(-2), peak, valley, env_std, env_flux, spread.mean(-1, keepdim=True)]
    return torch.cat(parts, dim=-1)


def statistics_dim(n_steps: int, n_mels: int, extended: bool = True) -> int:
    """Length of :func:`patch_statistics` for a ``[n_steps, n_mels]`` patch."""
    basic = 3 * n_mels + n_steps - 1
    return basic + (2 * n_mels + 2 * CONTRAST_GROUPS + 3 if extended else 0)


def masked_mean_std(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean and std over the valid steps of ``x`` ``[B, T, F]`` (``mask`` ``[B, T]``) -> ``[B, 2F]``."""
    m = mask.unsqueeze(-1)
    n = m.sum(1).clamp_min(1.0)
    mean = (x * m).sum(1) / n
    var = (((x - mean.unsqueeze(1)) ** 2) * m).sum(1) / n
    return torch.cat([mean, (var + 1e-6).sqrt()], dim=-1)


class MCA(StreamingModel):
    """Multi-scale context attention over A-LSTMs (joint V/A output).

    ``pool_stats`` adds a linear path on the mean and std of the raw patch statistics over the valid
    frames of the 10 s context (the "functionals over a window" baseline of MER, made causal). Its
    logits are added to the MCA fusion's: the linear path is a low-variance summary that ~600
    training clips can fit reliably, the A-LSTMs model what changes within the window. The embedding
    passed from :meth:`encode` to :meth:`temporal` is then ``[projected (d), raw statistics]``.

    ``frontend="smile260"`` reads the paper's own features instead: each frame is already a
    ``[n_features]`` functional vector (:class:`~emotrack.frontends.smile.Smile260`), so it is projected
    directly and the log-mel patch statistics (and ``n_mels``, ``n_steps``, ``extended``) are unused.
    The name is then stored on the instance, so training and export see this model's front end.
    ``frontend="musicnn"`` (:class:`~emotrack.frontends.musicnn.Musicnn`) reads pretrained embeddings the
    same way (``n_features`` = the width of the chosen musicnn layer).
    ``frontend="musicnn_tonal"`` (:class:`~emotrack.frontends.musicnn_tonal.MusicnnTonal`, the default model's)
    reads two musicnn embeddings (newest 2.9 s and 1 s) and the hop's tonal statistics as one vector.
    ``frontend="logmel_tonal"`` (:class:`~emotrack.frontends.tonal.LogMelTonal`) appends the mean and
    std over each patch of its chroma and key-clarity columns to the log-mel statistics.

    ``music_head`` adds a third fused output, the logit that the context holds music at all (trained on
    generated silence, noise and speech, :mod:`emotrack.data.nonmusic`); it is exported as the extra output
    ``music``, its probability, from which the runtime derives each hop's ``confidence`` and ``active``.
    """

    frontend = "logmel"
    frontends = ("logmel", "logmel_tonal", "smile260", "musicnn", "musicnn_tonal")

    def __init__(
        self,
        n_mels: int = 64,
        n_steps: int = 25,
        d: int = 64,
        hidden: int = 64,
        layers: int = 2,
        dropout: float = 0.3,
        extended: bool = True,
        pool_stats: bool = False,
        pool_dropout: float = 0.1,
        frontend: str | None = None,
        n_features: int | None = None,
        music_head: bool = False,
    ):
        super().__init__()
        self.music_head = bool(music_head)
        if self.music_head:
            self.extra_outputs = ("music",)
        if frontend is not None and frontend not in self.frontends:
            raise ValueError(f"MCA reads {', '.join(map(repr, self.frontends))} frames, not {frontend!r}")
        if frontend is not None:
            self.frontend = frontend
        self.extended = extended
        self.d = d
        if self.frontend in VECTOR_FRONTENDS:
            n_stats = int(n_features or VECTOR_FRONTENDS[self.frontend])
        else:
            n_stats = statistics_dim(n_steps, n_mels, extended)
        if self.frontend == "logmel_tonal":
            n_stats += 2 * N_TONAL
        self.project = nn.Sequential(nn.Linear(n_stats, d), nn.LayerNorm(d), nn.GELU(), nn.Dropout(dropout))
        self.head = MultiScaleALSTM(d, hidden, layers, dropout, n_out=3 if self.music_head else 2)
        self.pool = (
            nn.Sequential(nn.Dropout(pool_dropout), nn.Linear(2 * n_stats, 2)) if pool_stats else None
        )

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        if self.frontend in VECTOR_FRONTENDS:
            stats = frames
        elif self.frontend == "logmel_tonal":
            tonal = frames[..., -N_TONAL:]
            spread = (tonal - tonal.mean(-2, keepdim=True)).pow(2).mean(-2).clamp_min(1e-8).sqrt()
            stats = torch.cat([patch_statistics(frames[..., :-N_TONAL], self.extended), tonal.mean(-2), spread], -1)
        else:
            stats = patch_statistics(frames, self.extended)
        emb = self.project(stats)
        return emb if self.pool is None else torch.cat([emb, stats], dim=-1)

    def temporal(self, emb: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.pool is None:
            logits = self.head(emb, mask)
        else:
            logits = self.head(emb[..., : self.d], mask)
            pooled = self.pool(masked_mean_std(emb[..., self.d :], mask))
            logits = logits + (torch.cat([pooled, torch.zeros_like(pooled[:, :1])], -1) if self.music_head else pooled)
        if not self.music_head:
            return {"logits": logits}
        music_logit = logits[:, 2:3]
        return {"logits": logits[:, :2], "music_logit": music_logit, "music": torch.sigmoid(music_logit)}
