"""The model contract: what an emotrack ONNX file must carry so the runtime can run it.

Graph
    inputs ``frames`` ``[batch, context_frames, *frame_shape]`` float32 (the newest front-end frames,
    oldest first, newest last) and ``mask`` ``[batch, context_frames]`` float32 (1 = real frame,
    0 = left padding at stream start); output ``va`` ``[batch, 2]`` float32 = (valence, arousal) in
    [-1, 1]. Further outputs (e.g. ``quadrant_logits``) are allowed.

Metadata properties (``onnx.ModelProto.metadata_props``), JSON-encoded values under ``emotrack.*``
    keys: see :data:`REQUIRED_KEYS`. This module reads and checks them without torch or onnx, so the
    runtime can refuse a bad model with a clear message before it runs anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from emotrack import HOP_SECONDS
from emotrack.errors import ModelError

__all__ = ["CONTRACT_VERSION", "INPUT_FRAMES", "INPUT_MASK", "OUTPUT_VA", "REQUIRED_KEYS", "ModelCard"]

CONTRACT_VERSION = 1
INPUT_FRAMES = "frames"
INPUT_MASK = "mask"
OUTPUT_VA = "va"
PREFIX = "emotrack."
REQUIRED_KEYS = ("contract", "name", "version", "frontend", "context", "outputs")


MAX_CONTEXT_FRAMES = 1200
"""Longest context a model may ask for: 10 minutes of 0.5 s frames (the runtime preallocates it per stream)."""

POSITIVE_PARAMS = ("sample_rate", "n_fft", "hop_length_stft", "n_mels", "chroma_fft", "stft_hop", "key_seconds",
                   "log_offset")
"""Front-end parameters that size buffers, divide or go into a log: they must be positive numbers."""

SIZE_LIMITS = {"n_fft": 1 << 16, "chroma_fft": 1 << 17, "hop_length_stft": 1 << 16, "stft_hop": 1 << 16,
               "n_mels": 1024}
"""Whole-number sizes and their largest sane value (4-8 s FFTs at 16 kHz): ``n_fft = 1e8`` asked for 24.6 GiB."""

BANDS = (("fmin", "fmax", "n_fft", 0.0), ("chroma_fmin", "chroma_fmax", "chroma_fft", 1e-3))
"""Frequency bands in Hz (``low``, ``high``, the FFT size they are cut from, the least ``low``: chroma takes the log
of the frequency): finite, ``least <= low < high <= sample_rate / 2``, holding at least one FFT bin, or a filter
bank comes out empty (an ``IndexError`` deep in the front end)."""


def _number(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float: no sensible size
        return False


def _frontend_problems(params: Any) -> list[str]:
    if not isinstance(params, dict):
        return ["frontend params must be an object"]
    problems = []
    for key in POSITIVE_PARAMS:
        if key in params:
            value = params[key]
            if not _number(value) or value <= 0:
                problems.append(f"frontend {key} must be a positive number, not {value!r}")
            elif key in SIZE_LIMITS and not (value == int(value) and value <= SIZE_LIMITS[key]):
                problems.append(f"frontend {key} must be a whole number up to {SIZE_LIMITS[key]}, not {value!r}")
    rate = params.get("sample_rate", 16000)
    if _number(rate) and not 1000 <= rate <= 384_000:
        problems.append(f"frontend sample_rate must be 1000 to 384000 Hz, not {rate!r}")
    elif _number(rate) and rate == int(rate):
        hop = round(HOP_SECONDS * rate)
        for key in ("hop_length_stft", "stft_hop"):
            step = params.get(key)
            if _number(step) and 1 <= step == int(step) and hop % int(step):
                problems.append(f"frontend {key} {step!r} does not divide the {HOP_SECONDS} s hop ({hop} samples)")
        for low, high, size, least in BANDS:
            if low not in params and high not in params:
                continue
            lo, hi, n = params.get(low, least), params.get(high, rate / 2), params.get(size)
            if not (_number(lo) and _number(hi) and least <= lo < hi <= rate / 2):
                problems.append(f"frontend {low}..{high} must be a band within {least:g}..{rate / 2:g} Hz, "
                                f"not {lo!r}..{hi!r}")
            elif _number(n) and 1 <= n <= SIZE_LIMITS[size] and math.floor(hi * n / rate) < math.ceil(lo * n / rate):
                problems.append(f"frontend {low}..{high} ({lo:g}..{hi:g} Hz) holds no bin of a {n:g}-point FFT")
    return problems


def _normalization_problems(norm: Any) -> list[str]:
    if norm is None:
        return []
    if not isinstance(norm, dict) or not {"mean", "std"} <= norm.keys():
        return ["normalization must hold 'mean' and 'std'"]
    problems = []
    for key in ("mean", "std"):
        values = norm[key]
        flat = values if isinstance(values, list) else [values]
        if not flat or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                               for v in flat):
            problems.append(f"normalization {key} must be finite numbers")
        elif key == "std" and min(flat) <= 0:
            problems.append("normalization std must be positive (a zero std divides by zero)")
    if isinstance(norm["mean"], list) and isinstance(norm["std"], list) and len(norm["mean"]) != len(norm["std"]):
        problems.append(f"normalization mean ({len(norm['mean'])}) and std ({len(norm['std'])}) differ in length")
    return problems


@dataclass
class ModelCard:
    """Everything the runtime needs to know about a model, and what users see in ``emotrack models``.

    Attributes
    ----------
    name, version : str
        Model id, e.g. ``"mca"``, ``"0.1.0"``.
    architecture : str
        Paper/variant the graph implements (e.g. ``"MCA-C: multi-scale attention LSTM (Ma et al. 2017)"``).
    frontend : dict
        ``{"name": ..., "params": {...}}`` as accepted by :func:`emotrack.frontends.make_frontend`.
    normalization : dict or None
        ``{"mean": ..., "std": ...}`` applied to each frame before the graph (training-set statistics).
    context_frames : int
        Frames in the graph's context input (20 = 10 s at 0.5 s hops).
    windows_s : list of float
        Context windows the model attends to, ending at the current hop (e.g. 2.5, 5, 10 s).
    hop_s : float
        Hop between predictions in seconds (always 0.5 in this contract version).
    outputs : dict
        ``{"va": ["valence", "arousal"], "range": [-1, 1], "extra": {name: description}}``.
    training : dict
        Data, command, seed and date of the training run.
    metrics : dict
        Evaluation results (cross-validated), free-form but documented in the README.
    """

    name: str
    version: str
    frontend: dict[str, Any]
    context_frames: int = 20
    windows_s: list[float] = field(default_factory=lambda: [2.5, 5.0, 10.0])
    hop_s: float = HOP_SECONDS
    architecture: str = ""
    description: str = ""
    normalization: dict[str, Any] | None = None
    outputs: dict[str, Any] = field(
        default_factory=lambda: {"va": ["valence", "arousal"], "range": [-1.0, 1.0], "extra": {}}
    )
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    contract: int = CONTRACT_VERSION

    @property
    def model_id(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def sample_rate(self) -> int:
        return int(self.frontend.get("params", {}).get("sample_rate", 16000))

    # -- (de)serialisation ------------------------------------------------------------------------

    def to_properties(self) -> dict[str, str]:
        """Metadata properties to write into the ONNX file."""
        d = asdict(self)
        context = {"frames": d.pop("context_frames"), "windows_s": d.pop("windows_s"), "hop_s": d.pop("hop_s")}
        props = {PREFIX + k: json.dumps(v) for k, v in d.items()}
        props[PREFIX + "context"] = json.dumps(context)
        return props

    @classmethod
    def from_properties(cls, props: dict[str, str], source: str = "model") -> ModelCard:
        """Parse and check metadata properties; raise :class:`ModelError` naming what is wrong."""
        ours = {k[len(PREFIX) :]: v for k, v in props.items() if k.startswith(PREFIX)}
        if not ours:
            raise ModelError(f"{source} is ONNX but has no emotrack metadata (not exported by `emotrack export`)")
        missing = [k for k in REQUIRED_KEYS if k not in ours]
        if missing:
            raise ModelError(f"{source} lacks metadata {', '.join(PREFIX + k for k in missing)}")
        values: dict[str, Any] = {}
        for key, raw in ours.items():
            try:
                values[key] = json.loads(raw)
            except json.JSONDecodeError:
                raise ModelError(f"{source} has malformed metadata {PREFIX}{key}: not JSON") from None
        if values["contract"] != CONTRACT_VERSION:
            raise ModelError(
                f"{source} follows model contract v{values['contract']}, this emotrack reads v{CONTRACT_VERSION}"
            )
        context = values.pop("context")
        try:
            card = cls(
                context_frames=int(context["frames"]),
                windows_s=[float(w) for w in context["windows_s"]],
                hop_s=float(context["hop_s"]),
                **{k: v for k, v in values.items() if k in cls.__dataclass_fields__},
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(Infinity) frames
            raise ModelError(f"{source} has inconsistent metadata: {exc}") from None
        card.check(source)
        return card

    def check(self, source: str = "model") -> None:
        """Internal consistency checks (independent of the graph): every field a runtime sizes buffers by is
        present, of the right kind and in range, so an absurd file fails here with the field named, not in an
        allocation (a 1e8-frame context asked for 726 GiB) or deep in a front end."""
        problems = []
        if not isinstance(self.frontend, dict) or not isinstance(self.frontend.get("name"), str):
            problems.append("frontend must name a front end")
        else:
            problems += _frontend_problems(self.frontend.get("params", {}))
        if not abs(self.hop_s - HOP_SECONDS) <= 1e-9:  # written so that NaN fails too
            problems.append(f"hop is {self.hop_s} s, the runtime needs {HOP_SECONDS} s")
        if not all(0 < w < math.inf for w in self.windows_s):
            problems.append(f"windows must be positive seconds, not {self.windows_s}")
        for key in ("name", "version", "architecture", "description"):
            if not isinstance(getattr(self, key), str):
                problems.append(f"{key} must be a string, not {getattr(self, key)!r}")
        for key in ("training", "metrics"):
            if not isinstance(getattr(self, key), dict):
                problems.append(f"{key} must be an object, not {type(getattr(self, key)).__name__}")
        if not 1 <= self.context_frames <= MAX_CONTEXT_FRAMES:
            problems.append(f"context must hold 1 to {MAX_CONTEXT_FRAMES} frames, not {self.context_frames}")
        if not isinstance(self.outputs, dict) or not isinstance(self.outputs.get("va"), list):
            problems.append("outputs must be an object whose 'va' lists the output order")
            raise ModelError(f"{source} has inconsistent metadata: {'; '.join(problems)}")
        problems += _normalization_problems(self.normalization)
        longest = max(self.windows_s, default=0.0)
        if longest > self.context_frames * self.hop_s + 1e-9:
            problems.append(f"the {longest} s window does not fit a {self.context_frames}-frame context")
        if self.outputs.get("va") != ["valence", "arousal"]:
            problems.append("output 'va' must be ordered [valence, arousal]")
        if problems:
            raise ModelError(f"{source} has inconsistent metadata: {'; '.join(problems)}")

    def summary(self) -> dict[str, Any]:
        """The fields ``emotrack models`` shows."""
        return {
            "name": self.name,
            "version": self.version,
            "architecture": self.architecture,
            "description": self.description,
            "frontend": self.frontend.get("name"),
            "sample_rate": self.sample_rate,
            "context_s": self.context_frames * self.hop_s,
            "windows_s": self.windows_s,
            "training": self.training.get("data", ""),
            "metrics": self.metrics,
        }
