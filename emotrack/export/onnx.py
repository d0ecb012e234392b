"""Export a trained model to ONNX with the contract's metadata, then prove parity with PyTorch.

A file is only written once ``onnx.checker`` accepts it and ONNX Runtime reproduces PyTorch on real
audio contexts within ``tolerance``; otherwise :class:`ExportError` is raised and nothing is left behind.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from emotrack.audio import load_audio
from emotrack.context import unfold
from emotrack.errors import ModelError
from emotrack.export.metadata import INPUT_FRAMES, INPUT_MASK, OUTPUT_VA, ModelCard
from emotrack.frontends import Normalizer, make_frontend
from emotrack.models.common import StreamingModel

__all__ = ["EXAMPLE_AUDIO", "ExportError", "ParityReport", "export_onnx", "parity_contexts"]

from emotrack.assets import EXAMPLE_AUDIO  # noqa: E402  (re-exported)
OPSET = 17
FP32_TOLERANCE = 1e-4
FP16_TOLERANCE = 2e-2


class ExportError(ModelError):
    """The exported graph failed ``onnx.checker`` or the parity check."""


@dataclass
class ParityReport:
    max_abs_diff: float
    tolerance: float
    n_contexts: int
    path: Path

    def __str__(self) -> str:
        return (
            f"{self.path}: parity OK, max |torch - onnxruntime| = {self.max_abs_diff:.2e} "
            f"<= {self.tolerance:.0e} over {self.n_contexts} real-audio contexts"
        )


def parity_contexts(card: ModelCard, audio: Path = EXAMPLE_AUDIO, limit: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Normalised contexts from real audio (start-up hops included), as the runtime would build them."""
    frontend = make_frontend(card.frontend["name"], card.frontend.get("params"))
    frames = Normalizer.from_dict(card.normalization)(frontend.process_signal(load_audio(audio, card.sample_rate)))
    ctx, mask = unfold(frames, card.context_frames)
    pick = np.unique(np.linspace(0, len(ctx) - 1, min(limit, len(ctx))).astype(int))
    return ctx[pick], mask[pick]


def _torch_outputs(model: StreamingModel, frames: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(torch.from_numpy(frames), torch.from_numpy(mask))
    out = out if isinstance(out, tuple) else (out,)
    return [o.numpy() for o in out]


def export_onnx(
    model: StreamingModel,
    card: ModelCard,
    path: str | Path,
    *,
    fp16: bool = False,
    tolerance: float | None = None,
    audio: Path = EXAMPLE_AUDIO,
) -> ParityReport:
    """Write ``model`` to ``path`` with ``card`` as metadata after checker and parity checks pass."""
    path = Path(path)
    model = model.eval()
    card.check(str(path))
    frames, mask = parity_contexts(card, audio)
    output_names = [OUTPUT_VA, *model.extra_outputs]
    dynamic = {name: {0: "batch"} for name in [INPUT_FRAMES, INPUT_MASK, *output_names]}
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "model.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy-exporter deprecation and LSTM batch notes
            torch.onnx.export(
                model,
                (torch.from_numpy(frames[:1]), torch.from_numpy(mask[:1])),
                str(raw),
                input_names=[INPUT_FRAMES, INPUT_MASK],
                output_names=output_names,
                dynamic_axes=dynamic,
                opset_version=OPSET,
                dynamo=False,  # dynamo re-export of nn.LSTM fails in one process (probe.md §2)
            )
        proto = onnx.load(str(raw))
        if fp16:
            from onnxconverter_common import float16

            proto = float16.convert_float_to_float16(proto, keep_io_types=True)
        for key, value in card.to_properties().items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name = "emotrack"
        try:
            onnx.checker.check_model(proto, full_check=True)
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"exported graph fails onnx.checker: {str(exc).splitlines()[0]}") from None
        data = proto.SerializeToString()

    tolerance = tolerance if tolerance is not None else (FP16_TOLERANCE if fp16 else FP32_TOLERANCE)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    want = _torch_outputs(model, frames, mask)
    got = session.run(None, {INPUT_FRAMES: frames, INPUT_MASK: mask})
    diff = max(float(np.max(np.abs(w - g))) for w, g in zip(want, got, strict=True))
    if not diff <= tolerance:
        raise ExportError(f"parity check failed for {path}: max |torch - onnxruntime| = {diff:.2e} > {tolerance:.0e}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return ParityReport(diff, tolerance, len(frames), path)
