"""SincNet-C: learnable sinc filterbank on raw 16 kHz audio (Pandrea et al. 2020; spec models.md §5.8).

Each 0.5 s frame (8000 samples, front end ``wave``) goes through a mel-initialised sinc band-pass
layer (Ravanelli & Bengio 2018, the ``SincConv_fast`` parameterisation of spec §5.2: learned low
cut-off and band width per filter, Hamming window, unit centre tap), ``|.|``, max-pool, log
compression and a small Conv1d stack, then mean+max pooling to a ``d``-dim embedding. MCA's
attention LSTMs over the newest 5/10/20 frames give three context vectors; one MCA fusion predicts
(V, A) and a second one the four V-A quadrants (extra output ``quadrant_logits``, Q1..Q4 = ids 0..3).

Departures from the spec, for per-hop cost (all 20 frames are re-encoded every hop, so the spec's
80 filters x 251 taps at stride 1 would be ~3.2 G multiply-adds per hop):

* 32 filters x 139 taps at stride 20 (1.25 ms), "same" padding: ~1.8 M multiply-adds per frame,
  computed polyphase (see :meth:`SincConv.forward`). The short kernel limits frequency
  resolution to about ``fs / taps`` = 115 Hz, so the lowest
  mel-initialised bands are wider than they claim; the stride aliases the carrier, but ``|.|``
  followed by a max-pool keeps the band envelope, which is what the later layers use;
* no input LayerNorm and ``log1p`` + BatchNorm instead of the per-position LayerNorms: a per-frame
  LayerNorm would erase loudness, a strong arousal cue (the global ``wave`` normaliser scales input);
* max-pool 8 right after ``|.|`` (10 ms envelope steps), then Conv1d 32 -> 48 (k 5), pool 4,
  Conv1d 48 -> 64 (k 3) and mean+max over time instead of the flatten + 3 x 2048 MLP
  (17100-d input, ~40 M weights);
* the sinc filters are computed from their two learned parameters each in torch, and baked into a
  constant conv weight on ONNX export (parity with torch ~3e-8).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from emotrack.models.blocks import MultiScaleContexts, per_frame
from emotrack.models.common import MultiScaleFusion, StreamingModel


def hz_to_mel(hz: float | torch.Tensor) -> float | torch.Tensor:
    return 2595.0 * (torch.log10(1 + torch.as_tensor(hz) / 700.0))


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10 ** (mel / 2595.0) - 1)


class SincConv(nn.Module):
    """Band-pass sinc filterbank with learned cut-offs (``SincConv_fast``), optionally strided.

    Parameters
    ----------
    n_filters : int
        Number of band-pass filters (output channels).
    kernel_size : int
        Taps per filter (made odd, so filters are symmetric about a centre tap).
    stride : int
        Output step in samples.
    sample_rate : int
        Input rate in Hz.
    min_low_hz, min_band_hz : float
        Floors on the low cut-off and on the band width (50 Hz each, as in SincNet).
    """

    def __init__(
        self,
        n_filters: int = 32,
        kernel_size: int = 139,
        stride: int = 20,
        n_samples: int = 8000,
        sample_rate: int = 16000,
        min_low_hz: float = 50.0,
        min_band_hz: float = 50.0,
    ) -> None:
        super().__init__()
        if n_samples % stride:
            raise ValueError(f"stride {stride} must divide the {n_samples}-sample frame")
        self.blocks = math.ceil((kernel_size + 1) / stride)  # polyphase taps per phase
        self.kernel_size = self.blocks * stride - 1  # odd, symmetric about its centre tap
        self.stride = stride
        self.sample_rate = sample_rate
        self.min_low_hz, self.min_band_hz = min_low_hz, min_band_hz
        half = self.kernel_size // 2
        n_out = n_samples // stride
        self.pad = (half, stride * (n_out + self.blocks - 1) - n_samples - half)
        top = hz_to_mel(sample_rate / 2 - (min_low_hz + min_band_hz))
        edges = mel_to_hz(torch.linspace(float(hz_to_mel(30.0)), float(top), n_filters + 1))
        self.low_hz_ = nn.Parameter(edges[:-1].unsqueeze(1))
        self.band_hz_ = nn.Parameter(edges.diff().unsqueeze(1))
        window = 0.54 - 0.46 * torch.cos(2 * math.pi * torch.linspace(0, half - 1, half) / self.kernel_size)
        n = 2 * math.pi * torch.arange(-half, 0).float() / sample_rate  # left half, in radians per Hz
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("n", n, persistent=False)

    def filters(self) -> torch.Tensor:
        """``[n_filters, 1, kernel_size]`` impulse responses, centre tap normalised to 1."""
        low = self.min_low_hz + self.low_hz_.abs()
        high = (low + self.min_band_hz + self.band_hz_.abs()).clamp(self.min_low_hz, self.sample_rate / 2)
        band = high - low
        left = (torch.sin(high * self.n) - torch.sin(low * self.n)) / (self.n / 2) * self.window
        taps = torch.cat([left, 2 * band, left.flip(1)], dim=1) / (2 * band)
        return taps.unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, samples]`` -> ``[N, n_filters, samples / stride]`` ("same" padding, centred taps).

        Computed polyphase: the padded signal is cut into ``stride``-sample blocks (phases as channels)
        and convolved at stride 1 with the filters re-cut the same way (one zero tap appended). Same
        numbers as a strided Conv1d, but a 1-channel conv with stride 20 is a poor GEMM for ONNX
        Runtime (3.0 ms vs 1.3 ms per hop measured for 32 x 139 taps over 20 frames).
        """
        n = x.shape[0]
        blocks = F.pad(x, self.pad).reshape(n, -1, self.stride).transpose(1, 2)  # [N, stride, n_blocks]
        return F.conv1d(blocks, self.polyphase_weight())

    def polyphase_weight(self) -> torch.Tensor:
        """``[K, stride, blocks]`` conv weight; a baked constant when exporting to ONNX.

        Baking keeps the filter maths (``sin`` of arguments up to ~200 rad) out of a float16 graph,
        where it would lose precision, and saves recomputing fixed filters every hop.
        """
        taps = F.pad(self.filters(), (0, 1))  # [K, 1, blocks * stride]: one zero tap appended
        weight = taps.reshape(taps.shape[0], self.blocks, self.stride).transpose(1, 2)
        if torch.onnx.is_in_onnx_export():
            weight = torch.from_numpy(weight.detach().cpu().numpy().copy())  # traced as a constant
        return weight


class SincEncoder(nn.Module):
    """8000 samples -> sinc bank -> |.| -> pool -> log -> Conv1d stack -> mean+max -> ``d``."""

    def __init__(self, n_filters: int, kernel_size: int, stride: int, n_samples: int, sample_rate: int, d: int) -> None:
        super().__init__()
        self.sinc = SincConv(n_filters, kernel_size, stride, n_samples, sample_rate)
        self.pool = 8
        self.norm = nn.BatchNorm1d(n_filters)
        self.convs = nn.Sequential(
            nn.Conv1d(n_filters, 48, 5, padding=2, bias=False), nn.BatchNorm1d(48), nn.LeakyReLU(0.2),
            nn.MaxPool1d(4, ceil_mode=True),
            nn.Conv1d(48, 64, 3, padding=1, bias=False), nn.BatchNorm1d(64), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.project = nn.Sequential(nn.Linear(128, d), nn.LayerNorm(d), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool1d(self.sinc(x).abs(), self.pool, ceil_mode=True)  # band envelope, 10 ms steps
        x = F.leaky_relu(self.norm(torch.log1p(x)), 0.2)
        x = self.convs(x)
        return self.project(torch.cat([x.mean(2), x.amax(2)], dim=1))


class SincNet(StreamingModel):
    """SincNet-C: sinc filterbank frame encoder, MCA multi-scale A-LSTMs, V-A and quadrant heads.

    Parameters
    ----------
    hop_samples : int
        Samples per frame (Wave front end: 8000 at 16 kHz).
    sample_rate : int
        Input rate in Hz (sets the sinc filters' frequency axis).
    n_filters, kernel_size, stride :
        Sinc layer size (see the module docstring for why it is smaller than SincNet's).
    d, hidden, layers, dropout :
        Embedding and A-LSTM sizes.
    """

    frontend = "wave"
    extra_outputs = ("quadrant_logits",)

    def __init__(
        self,
        hop_samples: int = 8000,
        sample_rate: int = 16000,
        n_filters: int = 32,
        kernel_size: int = 139,
        stride: int = 20,
        d: int = 96,
        hidden: int = 96,
        layers: int = 2,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.hop_samples = hop_samples
        self.encoder = SincEncoder(n_filters, kernel_size, stride, hop_samples, sample_rate, d)
        self.scales = MultiScaleContexts(d, hidden, layers, dropout, cell="alstm")
        self.fusion = MultiScaleFusion(hidden)
        self.quadrant = MultiScaleFusion(hidden, n_out=4)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        return per_frame(self.encoder, frames, 1)

    def temporal(self, emb: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        contexts = self.scales(emb, mask)
        return {"logits": self.fusion(contexts), "quadrant_logits": self.quadrant(contexts)}
