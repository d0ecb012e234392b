"""Pretrained musicnn embeddings per 0.5 s hop, computed as a stream: transfer learning from the Million Song Dataset.

Why: every other front end here is learned from scratch on a few hundred labelled clips. musicnn
(Pons & Serra, ISMIR 2019 LBD) was trained to predict the 50 most frequent Last.fm tags of the
Million Song Dataset, moods among them ("happy", "sad", "mellow", "chill", "party", "sexy"), from
3 s mel-spectrogram windows, so its pooled activations already separate much of what 4Q's quadrants
need. The weights ship with the ISC-licensed ``musicnn`` package; ``emotrack/export/musicnn_tf.py``
converted its ``MSD_musicnn`` checkpoint to ONNX, and ``emotrack/export/musicnn_stream.py`` rewrote that
graph into the causal streaming form this front end runs (no TensorFlow at run time).

Definition (what one hop's embedding is):

* log-mel frames on a fixed grid of 512-sample frames every **250** samples at 16 kHz, each *ending* on
  a multiple of 250 samples, so a 0.5 s hop adds exactly 32 frames and every hop has the same shape
  (musicnn used a 256-sample hop: 31.25 frames per hop, so the frame count would vary from hop to hop,
  the newest frame would lag by up to 16 ms and streams at different phases could not share a batched
  call; a 250-sample hop plays musicnn's filters 2.4 % faster, which the head is trained on);
* musicnn's own per-frame activations, computed once per frame over the whole stream (zeros before its
  start); a frame's activations are final once its receptive field has been heard, so the newest frame
  describes the music ~1.0 s (front end) to ~1.15 s (last mid-end layer) before the hop's end;
* the max and mean over the newest 187 final frames (2.9 s, fewer at stream start) of the 753 channels,
  then musicnn's two dense layers.

So a hop runs the network on 32 new frames only (about a sixth of recomputing the 3 s window), and the
incremental result equals a from-scratch computation of the same definition (``tests/test_musicnn.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import onnxruntime as ort

from emotrack.assets import ASSETS
from emotrack.errors import ModelError
from emotrack.frontends.base import FrontEnd
from emotrack.frontends.logmel import mel_filterbank
from emotrack.ort_settings import execution_providers, session_options

WEIGHTS = {"msd": ASSETS / "frontends" / "musicnn_msd_stream.onnx"}
"""Streaming graphs by name: ``msd`` is musicnn's ``MSD_musicnn`` (50 Million Song Dataset tags). Each has
its pooled-to-embedding layers beside it, ``_stream`` replaced by ``_backend``."""

LAYERS = {"taggram": 50, "mean_pool": 753, "max_pool": 753, "penultimate": 200}
"""The network's outputs and their widths: tag probabilities, the mean and max over the window of the 753
front-end and mid-end channels, and the 200-unit dense layer before the tag logits."""

WIDTHS = {**LAYERS, "pooled": 1506}
"""What a :class:`Musicnn` front end can return: a network output, or ``pooled``, the 1,506 statistics the
back end reads (each channel's max and mean, interleaved), which a linear probe finds hold more of 4Q's
quadrants than any narrower layer (``bench/results/layer_probe.md``)."""

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH_STFT = 250
N_MELS = 96
N_FRAMES = 187
"""The pooling window: musicnn's 187 input frames (2.92 s on the 250-sample grid)."""
N_CHANNELS = 753
STATE_SHAPES = {"past_input": (127, N_MELS), "past_frontend": (561, 6), "past_mid1": (64, 6), "past_mid2": (64, 6)}
"""The streaming graph's per-stream state (without the batch axis): the last 127 normalised input frames (the
longest temporal kernel is 128), the last 6 front-end frames and the last 6 frames of the first two mid-end
layers (``emotrack/export/musicnn_stream.py`` builds the graph around these)."""
OFFLINE_CHUNK_HOPS = 16
"""Most hops per network call in :meth:`Musicnn.process_hops` (512 frames): per-call costs are already gone at
one hop (32 frames), and ONNX Runtime's working memory grows with the call (~100 MB at 16 hops, ~400 MB at 64)."""


@cache
def load_network(weights: str, threads: int = 1, provider: str = "cpu") -> tuple[ort.InferenceSession, ...]:
    """The streaming graph and its back end (pooled statistics -> embedding) as ONNX Runtime sessions, shared by
    every front end in the process that asks for the same settings (sessions are safe to run from several threads).

    ``provider`` and ``threads`` are the model's, with the same session settings (:mod:`emotrack.ort_settings`);
    CUDA falls back to the CPU where it cannot load.
    """
    path = WEIGHTS[weights]
    sessions = []
    for graph in (path, path.with_name(path.name.replace("_stream", "_backend"))):
        try:
            sessions.append(ort.InferenceSession(str(graph), sess_options=session_options(threads),
                                                 providers=execution_providers(provider)))
        except Exception as exc:  # ORT raises its own NoSuchFile/InvalidProtobuf/... types
            raise ModelError(f"cannot load the musicnn network {graph}: {str(exc).splitlines()[0]}") from None
    return tuple(sessions)


def musicnn_logmel(audio: np.ndarray, mel: np.ndarray, hann: np.ndarray, hop: int = HOP_LENGTH_STFT) -> np.ndarray:
    """musicnn's input representation, ``log10(1 + 10000 * mel power)``, of every 512-sample frame of
    ``audio`` starting at multiples of ``hop`` samples: ``[frames, 96]``.

    Same STFT, Slaney mel filters and compression as musicnn's ``librosa.feature.melspectrogram``
    pipeline (no centring); musicnn itself used ``hop=256``.
    """
    frames = np.lib.stride_tricks.sliding_window_view(audio, N_FFT)[::hop]
    power = (np.abs(np.fft.rfft(frames * hann, axis=-1)) ** 2).astype(np.float32)
    # einsum's own loop, not BLAS: OpenBLAS would split this small product over spinning threads
    # that steal the core the audio callback and the other streams need (4x slower under load).
    return np.log10(1.0 + 10000.0 * np.einsum("tf,fm->tm", power, mel, optimize=False)).astype(np.float32)


def pool(activations: np.ndarray) -> np.ndarray:
    """musicnn's temporal pooling: ``[..., T, 753]`` -> ``[..., 1506]``, each channel's max then its mean
    (interleaved, as musicnn's flatten of ``concat([max, mean], axis=-1)`` orders them)."""
    stats = np.stack([activations.max(axis=-2), activations.mean(axis=-2, dtype=np.float32)], axis=-1)
    return stats.reshape(*stats.shape[:-2], 2 * N_CHANNELS)


def embed(pooled: np.ndarray, backend: ort.InferenceSession, layer: str) -> np.ndarray:
    """musicnn's back end from pooled statistics ``[N, 1506]`` to ``layer`` ``[N, WIDTHS[layer]]``."""
    if layer == "max_pool":
        return np.ascontiguousarray(pooled[:, 0::2])
    if layer == "mean_pool":
        return np.ascontiguousarray(pooled[:, 1::2])
    if layer == "pooled":
        return np.ascontiguousarray(pooled, np.float32)
    return backend.run([layer], {"pooled": np.ascontiguousarray(pooled, np.float32)})[0]


class Musicnn(FrontEnd):
    """Causal streaming musicnn embeddings: one ``[WIDTHS[layer]]`` float32 vector per 0.5 s hop.

    Parameters
    ----------
    sample_rate : int
        Must be 16000, the rate musicnn was trained at (the runtime resamples to it).
    layer : str
        Which output to return (:data:`WIDTHS`); default ``penultimate``, the 200-unit embedding.
    weights : str
        Which network (:data:`WEIGHTS`).
    stft_hop : int
        The frame grid; only 250 is supported (stored in model cards so a change of definition shows).

    Notes
    -----
    Cost: the network on the hop's 32 new frames (0.24 G multiply-adds), ~5 ms of one CPU core
    (``bench/results/``); :meth:`use_runtime` gives it more threads or the GPU. :meth:`process_many` runs
    many streams' hops in one call and :meth:`process_hops` many hops of one stream.
    """

    name = "musicnn"

    windows: tuple[int, ...] = (N_FRAMES,)
    """Pooling windows in frames, newest first out: each gives one embedding per hop (subclasses add shorter ones)."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, layer: str = "penultimate", weights: str = "msd",
                 stft_hop: int = HOP_LENGTH_STFT) -> None:
        if int(sample_rate) != SAMPLE_RATE:
            raise ValueError(f"musicnn runs at {SAMPLE_RATE} Hz, not {sample_rate}")
        if layer not in WIDTHS:
            raise ValueError(f"unknown musicnn layer {layer!r} (choose from {', '.join(WIDTHS)})")
        if weights not in WEIGHTS:
            raise ValueError(f"unknown musicnn weights {weights!r} (choose from {', '.join(WEIGHTS)})")
        if int(stft_hop) != HOP_LENGTH_STFT:
            raise ValueError(f"the streaming musicnn front end runs on a {HOP_LENGTH_STFT}-sample grid, not {stft_hop}")
        super().__init__(sample_rate)
        self.layer = layer
        self.weights = weights
        self.frames_per_hop = self.hop_length // HOP_LENGTH_STFT
        self.carry = N_FFT - HOP_LENGTH_STFT  # samples of the previous hop that the first new frame needs
        self._mel = mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS, 0.0, SAMPLE_RATE / 2).T.copy()
        self._hann = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic, as scipy/librosa
        self.session, self._backend = load_network(weights)
        self._audio = np.zeros(self.carry, np.float32)  # the previous hop's last samples
        self._state = {k: np.zeros((1, *s), np.float32) for k, s in STATE_SHAPES.items()}
        self._ring = np.zeros((N_FRAMES, N_CHANNELS), np.float32)
        self._filled = 0

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return (WIDTHS[self.layer],)

    def params(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "layer": self.layer, "weights": self.weights,
                "stft_hop": HOP_LENGTH_STFT}

    def reset(self) -> None:
        self._audio[:] = 0.0
        for value in self._state.values():
            value[:] = 0.0
        self._ring[:] = 0.0
        self._filled = 0

    def use_runtime(self, provider: str, threads: int) -> None:
        self.session, self._backend = load_network(self.weights, threads, provider)

    def __deepcopy__(self, memo: dict[int, Any]) -> Musicnn:
        """A copy with its own stream state and the same (stateless, thread-safe) network session."""
        clone = copy.copy(self)
        clone._audio = self._audio.copy()
        clone._state = {k: v.copy() for k, v in self._state.items()}
        clone._ring = self._ring.copy()
        return clone

    def _logmel(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel frames of the newest ``audio`` (whole hops), with the previous hop's tail in front."""
        audio = np.concatenate([self._audio, np.asarray(audio, np.float32).ravel()])
        self._audio[:] = audio[-self.carry :]
        return musicnn_logmel(audio, self._mel, self._hann)

    def _push(self, activations: np.ndarray) -> np.ndarray:
        """Add one hop's per-frame activations to the pooling window; returns the hop's pooled statistics
        ``[n_views, 1506]``: one row per pooling window of :attr:`windows` (newest frames, fewer at the start)."""
        n = len(activations)
        self._ring[:-n] = self._ring[n:]
        self._ring[-n:] = activations
        self._filled = min(N_FRAMES, self._filled + n)
        return np.stack([pool(self._ring[N_FRAMES - min(w, self._filled) :]) for w in self.windows])

    def _embed(self, pooled: np.ndarray) -> np.ndarray:
        """``[N, n_views, 1506]`` pooled statistics -> ``[N, n_views * width]`` (one back-end call for all)."""
        n, views = pooled.shape[:2]
        return embed(pooled.reshape(n * views, -1), self._backend, self.layer).reshape(n, -1)

    def process(self, hop: np.ndarray) -> np.ndarray:
        hop = np.asarray(hop, np.float32)
        if hop.shape != (self.hop_length,):
            raise ValueError(f"expected a hop of {self.hop_length} samples, got shape {hop.shape}")
        return self.process_hops(hop[None])[0]

    def process_hops(self, hops: np.ndarray) -> np.ndarray:
        """Consecutive hops of this stream in as few network calls as :func:`_chunks` allows.

        Equals hop-by-hop :meth:`process` up to float rounding (a call on more frames at once sums in
        another order; tested to 1e-5 of the embedding's scale).
        """
        hops = np.asarray(hops, np.float32)
        pooled = np.empty((len(hops), len(self.windows), 2 * N_CHANNELS), np.float32)
        per = self.frames_per_hop
        start = 0
        for count in _chunks(len(hops)):
            logmel = self._logmel(hops[start : start + count])
            frames, *state = self.session.run(None, {"logmel": logmel[None], **self._state})
            self._state = dict(zip(STATE_SHAPES, state, strict=True))
            for i in range(count):
                pooled[start + i] = self._push(frames[0, i * per : (i + 1) * per])
            start += count
        return self._append(self._embed(pooled), hops)

    def _append(self, embeddings: np.ndarray, hops: np.ndarray) -> np.ndarray:
        """Hook for subclasses: the frames of ``hops`` (this stream's) from their embeddings; here the embeddings."""
        return embeddings

    @staticmethod
    def process_many(frontends: Sequence[FrontEnd], hops: np.ndarray) -> np.ndarray:
        """One hop for each of several streams in one network call: ``hops`` ``[N, hop_length]`` -> ``[N, width]``.

        The front ends must be copies of one (same network and layer); each keeps its own state.
        """
        first = frontends[0]
        if not all(type(fe) is type(first) and fe.session is first.session and fe.windows == first.windows
                   for fe in frontends):
            return FrontEnd.process_many(frontends, hops)
        logmel = np.stack([fe._logmel(hop) for fe, hop in zip(frontends, hops, strict=True)])
        feeds = {"logmel": logmel}
        for key in STATE_SHAPES:
            feeds[key] = np.concatenate([fe._state[key] for fe in frontends])
        frames, *state = first.session.run(None, feeds)
        pooled = np.empty((len(frontends), len(first.windows), 2 * N_CHANNELS), np.float32)
        for i, fe in enumerate(frontends):
            fe._state = {key: value[i : i + 1] for key, value in zip(STATE_SHAPES, state, strict=True)}
            pooled[i] = fe._push(frames[i])
        embeddings = first._embed(pooled)
        return np.concatenate([fe._append(embeddings[i : i + 1], hops[i : i + 1]) for i, fe in enumerate(frontends)])


def _chunks(n_hops: int) -> list[int]:
    """Hop counts of the offline network calls: full chunks, then the rest in powers of two, so a process
    sees at most seven input shapes (ONNX Runtime plans and allocates per new shape, ~0.2 s each)."""
    full, rest = divmod(n_hops, OFFLINE_CHUNK_HOPS)
    powers = [1 << b for b in reversed(range(OFFLINE_CHUNK_HOPS.bit_length())) if rest >> b & 1]
    return [OFFLINE_CHUNK_HOPS] * full + powers
