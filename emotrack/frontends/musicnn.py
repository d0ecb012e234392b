"""Pretrained musicnn embeddings per 0.5 s hop: transfer learning from the Million Song Dataset.

Why: every other front end here is learned from scratch on a few hundred labelled clips. musicnn
(Pons & Serra, ISMIR 2019 LBD) was trained to predict the 50 most frequent Last.fm tags of the
Million Song Dataset, moods among them ("happy", "sad", "mellow", "chill", "party", "sexy"), from
3 s mel-spectrogram windows, so its pooled activations already separate much of what 4Q's quadrants
need. The weights ship with the ISC-licensed ``musicnn`` package; ``emotrack/export/musicnn_tf.py``
converted its ``MSD_musicnn`` checkpoint to ``assets/frontends/musicnn_msd.onnx`` (3 MB), so this
front end runs on ONNX Runtime like everything else at run time (no TensorFlow).

Causality: each hop, the network sees the newest 3.008 s of audio (187 STFT frames of 512 samples,
hop 256, at 16 kHz), ending exactly at the hop's last sample; at stream start the window is padded
with silence. musicnn itself centres frames and pads both ends; end-aligned frames shift its input
by at most half a frame, which a network trained on random 3 s crops does not notice.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import numpy as np
import onnxruntime as ort

from emotrack.assets import ASSETS
from emotrack.errors import ModelError
from emotrack.frontends.base import FrontEnd
from emotrack.frontends.logmel import mel_filterbank
from emotrack.sessions import execution_providers, session_options

WEIGHTS = {"msd": ASSETS / "frontends" / "musicnn_msd.onnx"}
"""Converted checkpoints by name: ``msd`` is musicnn's ``MSD_musicnn`` (50 Million Song Dataset tags)."""

LAYERS = {"taggram": 50, "mean_pool": 753, "max_pool": 753, "penultimate": 200}
"""Graph outputs and their widths: tag probabilities, the mid-end's mean and max over time (front-end
and mid-end channels), and the 200-unit dense layer before the tag logits."""

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH_STFT = 256
N_MELS = 96
N_FRAMES = 187
"""musicnn's input: 187 frames of 96 mel bands (3 s at 16 kHz)."""


@cache
def load_network(weights: str, threads: int = 1, provider: str = "cpu") -> ort.InferenceSession:
    """The converted network as an ONNX Runtime session, shared by every front end in the process that
    asks for the same settings: sessions are safe to run from several threads.

    ``provider`` and ``threads`` are the model's, with the same session settings
    (:mod:`emotrack.sessions`); CUDA falls back to the CPU where it cannot load.
    """
    path = WEIGHTS[weights]
    try:
        return ort.InferenceSession(str(path), sess_options=session_options(threads),
                                    providers=execution_providers(provider))
    except Exception as exc:  # ORT raises its own NoSuchFile/InvalidProtobuf/... types
        raise ModelError(f"cannot load the musicnn network {path}: {str(exc).splitlines()[0]}") from None


def musicnn_logmel(window: np.ndarray, mel: np.ndarray, hann: np.ndarray) -> np.ndarray:
    """musicnn's input representation of one window: ``log10(1 + 10000 * mel power)``, ``[187, 96]``.

    Same STFT, Slaney mel filters and compression as musicnn's ``librosa.feature.melspectrogram``
    pipeline, with frames placed from the window's start (no centring).
    """
    frames = np.lib.stride_tricks.sliding_window_view(window, N_FFT)[::HOP_LENGTH_STFT]
    power = (np.abs(np.fft.rfft(frames * hann, axis=-1)) ** 2).astype(np.float32)
    # einsum's own loop, not BLAS: OpenBLAS would split this small product over spinning threads
    # that steal the core the audio callback and the other streams need (4x slower under load).
    return np.log10(1.0 + 10000.0 * np.einsum("tf,fm->tm", power, mel, optimize=False)).astype(np.float32)


class Musicnn(FrontEnd):
    """Causal musicnn embeddings: one ``[LAYERS[layer]]`` float32 vector per 0.5 s hop.

    Parameters
    ----------
    sample_rate : int
        Must be 16000, the rate musicnn was trained at (the runtime resamples to it).
    layer : str
        Which activation to return (:data:`LAYERS`); default ``penultimate``, the 200-unit embedding.
    weights : str
        Which converted checkpoint (:data:`WEIGHTS`).

    Notes
    -----
    Cost: one network run on a 3 s window per hop (about 2.7 GFLOP), tens of milliseconds of one CPU
    core (``bench/results/side_by_side.md``); :meth:`use_runtime` gives it more threads or the GPU.
    """

    name = "musicnn"

    def __init__(self, sample_rate: int = SAMPLE_RATE, layer: str = "penultimate", weights: str = "msd") -> None:
        if int(sample_rate) != SAMPLE_RATE:
            raise ValueError(f"musicnn runs at {SAMPLE_RATE} Hz, not {sample_rate}")
        if layer not in LAYERS:
            raise ValueError(f"unknown musicnn layer {layer!r} (choose from {', '.join(LAYERS)})")
        if weights not in WEIGHTS:
            raise ValueError(f"unknown musicnn weights {weights!r} (choose from {', '.join(WEIGHTS)})")
        super().__init__(sample_rate)
        self.layer = layer
        self.weights = weights
        self.window_length = N_FFT + (N_FRAMES - 1) * HOP_LENGTH_STFT
        self._mel = mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS, 0.0, SAMPLE_RATE / 2).T.copy()
        self._hann = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic, as scipy/librosa
        self._buf = np.zeros(self.window_length, np.float32)
        self.session = load_network(weights)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return (LAYERS[self.layer],)

    def params(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "layer": self.layer, "weights": self.weights}

    def reset(self) -> None:
        self._buf[:] = 0.0

    def use_runtime(self, provider: str, threads: int) -> None:
        self.session = load_network(self.weights, threads, provider)

    def __deepcopy__(self, memo: dict[int, Any]) -> Musicnn:
        """A copy with its own audio history and the same (stateless, thread-safe) network session."""
        clone = copy.copy(self)
        clone._buf = self._buf.copy()
        return clone

    def process(self, hop: np.ndarray) -> np.ndarray:
        hop = np.asarray(hop, np.float32)
        if hop.shape != (self.hop_length,):
            raise ValueError(f"expected a hop of {self.hop_length} samples, got shape {hop.shape}")
        self._buf[: -self.hop_length] = self._buf[self.hop_length :]
        self._buf[-self.hop_length :] = hop
        logmel = musicnn_logmel(self._buf, self._mel, self._hann)
        (out,) = self.session.run([self.layer], {"logmel": logmel[None]})
        return out[0].astype(np.float32)
