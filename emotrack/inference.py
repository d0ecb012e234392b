"""ONNX Runtime sessions for emotrack models: provider choice, contract checks and the per-hop call.

The provider is decided once, at load time, from what the created session really uses
(``get_providers()``): ``onnxruntime-gpu`` lists CUDA as *available* even on machines where it cannot
load, so availability alone says nothing.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from emotrack.assets import MODEL_DIR
from emotrack.errors import ModelError
from emotrack.export.metadata import INPUT_FRAMES, INPUT_MASK, OUTPUT_VA, ModelCard
from emotrack.frontends import FrontEnd, Normalizer, make_frontend
from emotrack.ort_settings import execution_providers, session_options

__all__ = ["MODEL_DIR", "DEFAULT_MODEL", "ModelRunner", "available_models", "bundled_models", "resolve_model",
           "user_models", "user_models_dir"]

DEFAULT_MODEL = "mca-musicnn"
"""The most accurate bundled model by its cross-validated 4Q F1 (``emotrack models``). ``mca`` is the
light one: a tenth of the CPU per hop, for many streams, small machines and fast offline analysis."""
PROVIDERS = ("auto", "cpu", "cuda")


def bundled_models() -> dict[str, Path]:
    """Bundled model files by name."""
    return {p.stem: p for p in sorted(MODEL_DIR.glob("*.onnx"))}


def user_models_dir() -> Path:
    """The user's models folder (personal models, `emotrack personalize`): ``$EMOTRACK_MODELS``, else the
    platform's user data folder + ``emotrack/models`` (``$XDG_DATA_HOME`` or ``~/.local/share`` on Linux)."""
    if os.environ.get("EMOTRACK_MODELS"):
        return Path(os.environ["EMOTRACK_MODELS"]).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "emotrack" / "models"


def user_models() -> dict[str, Path]:
    """Model files in the user's models folder by name (none if the folder does not exist)."""
    folder = user_models_dir()
    return {p.stem: p for p in sorted(folder.glob("*.onnx"))} if folder.is_dir() else {}


def available_models() -> dict[str, Path]:
    """Bundled models, then the user's (a user file never shadows a bundled name)."""
    bundled = bundled_models()
    return {**bundled, **{k: v for k, v in user_models().items() if k not in bundled}}


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """A model name (bundled, or in :func:`user_models_dir`) or a path to an ``.onnx`` file -> existing path.

    A bundled name wins over a same-named file or folder in the working directory unless the argument looks
    like a path (has a separator or ends in ``.onnx``): ``--model mca`` is the bundled model, ``--model ./mca``
    the file.
    """
    if model is None:
        model = DEFAULT_MODEL
    path = Path(model)
    models = available_models()
    looks_like_path = path.suffix == ".onnx" or os.sep in str(model) or (os.altsep or os.sep) in str(model)
    if str(model) in models and not looks_like_path:  # a folder named "mca" in the cwd must not shadow it
        return models[str(model)]
    if looks_like_path or path.exists():
        if not path.exists():
            raise ModelError(f"model file not found: {path}")
        if path.is_dir():
            raise ModelError(f"{path} is a folder, not an .onnx model file")
        return path
    if str(model) not in models:
        known = ", ".join(models) or "none bundled"
        raise ModelError(f"unknown model {model!r} (known: {known}; or give a path to an .onnx file)")
    return models[str(model)]


def _create_session(path: Path, provider: str, threads: int) -> ort.InferenceSession:
    wanted = execution_providers(provider)
    opts = session_options(threads)
    if wanted[0] == "CUDAExecutionProvider":
        # A CUDA provider that cannot load logs an error and falls back; keep that out of the terminal.
        opts.log_severity_level = 4
        ort.set_default_logger_severity(4)
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=wanted)
    except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/... types
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        text = re.sub(r"^.*onnxruntime::\S*\([^)]*\)\s*", "", text)  # drop ORT's C++ location prefix
        if "protobuf" in text.lower() or "parsing" in text.lower() or "invalid" in text.lower():
            raise ModelError(f"{path} is not an ONNX model ({text})") from None
        raise ModelError(f"cannot load {path}: {text}") from None
    finally:
        ort.set_default_logger_severity(3)


class ModelRunner:
    """One loaded model: its card, front end, normaliser and ONNX Runtime session.

    Parameters
    ----------
    model : str or path
        Bundled model name or ``.onnx`` path.
    provider : {"auto", "cpu", "cuda"}
        ``auto`` uses CUDA when a session really gets it, else CPU; ``cuda`` fails if it cannot.
    threads : int
        ONNX Runtime intra-op threads (1 keeps per-hop latency steady next to audio work).
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, provider: str = "auto", threads: int = 1):
        if provider not in PROVIDERS:
            raise ModelError(f"unknown provider {provider!r} (choose from {', '.join(PROVIDERS)})")
        self.path = resolve_model(model)
        self.threads = int(threads)
        self.session = _create_session(self.path, provider, threads)
        used = self.session.get_providers()
        self.provider = "cuda" if used and used[0] == "CUDAExecutionProvider" else "cpu"
        if provider == "cuda" and self.provider != "cuda":
            raise ModelError("CUDA was requested but ONNX Runtime could not use it (try --provider cpu)")
        meta = self.session.get_modelmeta().custom_metadata_map
        self.card = ModelCard.from_properties(meta, source=str(self.path))
        self.frontend: FrontEnd = make_frontend(self.card.frontend["name"], self.card.frontend.get("params"))
        self.frontend.use_runtime(self.provider, threads)
        self.normalizer = Normalizer.from_dict(self.card.normalization)
        self._check_normalization()
        self._check_graph()
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._binding = self.session.io_binding() if self.provider == "cuda" else None
        self.warm_up()

    def warm_up(self, runs: int = 2) -> None:
        """Run the graph on an empty context so the first real hop does not pay allocation (and CUDA init)."""
        frames = np.zeros((1, self.card.context_frames, *self.frontend.frame_shape), np.float32)
        mask = np.zeros((1, self.card.context_frames), np.float32)
        mask[0, -1] = 1.0
        for _ in range(runs):
            self.run(frames, mask)

    def _check_normalization(self) -> None:
        """Per-column statistics must have one value per column of the front end's frame."""
        columns = self.frontend.frame_shape[-1]
        for key in ("mean", "std"):
            values = (self.card.normalization or {}).get(key)
            if isinstance(values, list) and len(values) != columns:
                raise ModelError(f"{self.path} has inconsistent metadata: normalization {key} has {len(values)} "
                                 f"values, the {self.card.frontend['name']} front end gives {columns} per row")

    def _check_graph(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        src = str(self.path)
        if set(inputs) != {INPUT_FRAMES, INPUT_MASK} or OUTPUT_VA not in outputs:
            raise ModelError(
                f"{src} breaks the model contract: inputs {sorted(inputs)} / outputs {sorted(outputs)} "
                f"(need inputs {INPUT_FRAMES!r}, {INPUT_MASK!r} and output {OUTPUT_VA!r})"
            )
        want = [self.card.context_frames, *self.frontend.frame_shape]
        got = list(inputs[INPUT_FRAMES].shape[1:])
        if got != want:
            raise ModelError(f"{src}: input {INPUT_FRAMES!r} has shape [batch, {got}] but metadata implies {want}")
        if list(inputs[INPUT_MASK].shape[1:]) != [self.card.context_frames]:
            raise ModelError(f"{src}: input {INPUT_MASK!r} does not match the {self.card.context_frames}-frame context")

    def run(self, frames: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        """Run a batch: ``frames`` ``[B, T, *frame]`` (normalised), ``mask`` ``[B, T]`` -> outputs by name."""
        feeds = {
            INPUT_FRAMES: np.ascontiguousarray(frames, np.float32),
            INPUT_MASK: np.ascontiguousarray(mask, np.float32),
        }
        if self._binding is None:
            return dict(zip(self.output_names, self.session.run(None, feeds), strict=True))
        binding = self._binding
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        for name in self.output_names:
            binding.bind_output(name, "cuda")
        self.session.run_with_iobinding(binding)
        return dict(zip(self.output_names, binding.copy_outputs_to_cpu(), strict=True))
