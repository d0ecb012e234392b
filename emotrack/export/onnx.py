"""Export a trained model to ONNX with the contract's metadata, then prove parity with PyTorch.

A file is only written once ``onnx.checker`` accepts it and ONNX Runtime reproduces PyTorch on real
audio contexts within ``tolerance``; otherwise :class:`ExportError` is raised and nothing is left behind.

``fp16=True`` stores the graph in float16 (half the file size, fast on CUDA) but keeps float32
inputs and outputs, so the runtime feeds it exactly like the float32 file. Its parity tolerance is
:data:`FP16_TOLERANCE` (absolute, on ``va`` in [-1, 1] and on any extra output).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from emotrack.assets import EXAMPLE_AUDIO
from emotrack.audio import load_audio
from emotrack.context import unfold
from emotrack.errors import ModelError
from emotrack.export.metadata import INPUT_FRAMES, INPUT_MASK, OUTPUT_VA, ModelCard
from emotrack.frontends import Normalizer, make_frontend
from emotrack.models.common import StreamingModel

__all__ = [
    "EXAMPLE_AUDIO",
    "FP16_TOLERANCE",
    "FP32_TOLERANCE",
    "ExportError",
    "ParityReport",
    "export_main",
    "export_onnx",
    "parity_contexts",
]

OPSET = 17
FP32_TOLERANCE = 1e-4
FP16_TOLERANCE = 2e-2
"""Max |torch - onnxruntime| for the float16 file. ORT's CPU provider casts most fp16 ops back to
float32, so the CPU check mostly sees fp16 weight rounding (measured <= 1.1e-3 on the zoo, random
init); on CUDA the arithmetic is fp16 too, and 2e-2 (1 % of the V-A range) leaves room for it."""

FP16_OP_BLOCK = ("Transpose",)
"""Ops kept in float32 in the fp16 file: onnxruntime 1.31 segfaults creating a CPU session for fp16
``Transpose`` in the zoo's graphs (found by converting one op type at a time)."""


class ExportError(ModelError):
    """The exported graph failed ``onnx.checker`` or the parity check."""


@dataclass
class ParityReport:
    max_abs_diff: float
    tolerance: float
    n_contexts: int
    path: Path
    fp16: bool = False

    def __str__(self) -> str:
        kind = "float16" if self.fp16 else "float32"
        return (
            f"{self.path}: {kind} parity OK, max |torch - onnxruntime| = {self.max_abs_diff:.2e} "
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


def _to_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    try:
        from onnxconverter_common import float16
    except ImportError:
        raise ExportError("fp16 export needs onnxconverter-common: pip install 'emotrack[train]'") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "float32 number ... will be truncated" for -1e9 masks etc.
        return float16.convert_float_to_float16(
            proto, keep_io_types=True, op_block_list=[*float16.DEFAULT_OP_BLOCK_LIST, *FP16_OP_BLOCK]
        )


_CHILD = """
import sys, numpy as np, onnxruntime as ort
d = np.load(sys.argv[2])
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
out = s.run(None, {k: d[k] for k in d.files})
np.savez(sys.argv[3], *out)
"""


def _run_onnx(data: bytes, feeds: dict[str, np.ndarray], isolate: bool) -> list[np.ndarray]:
    """Run the serialised graph in ONNX Runtime (CPU).

    ``isolate`` runs it in a child process, so a native crash inside onnxruntime (seen with fp16
    graphs) becomes an :class:`ExportError` instead of killing the exporting process.
    """
    if not isolate:
        import onnxruntime as ort

        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        return session.run(None, feeds)
    with tempfile.TemporaryDirectory() as tmp:
        model, inputs, outputs = Path(tmp) / "m.onnx", Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        model.write_bytes(data)
        np.savez(inputs, **feeds)
        res = subprocess.run([sys.executable, "-c", _CHILD, str(model), str(inputs), str(outputs)],
                             capture_output=True, text=True)  # fmt: skip
        if res.returncode != 0:
            why = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
            raise ExportError(f"onnxruntime could not run the exported graph: {why}")
        with np.load(outputs) as out:
            return [out[f"arr_{i}"] for i in range(len(out.files))]


def _max_diff(want: list[np.ndarray], got: list[np.ndarray]) -> float:
    if len(want) != len(got) or any(w.shape != g.shape for w, g in zip(want, got, strict=False)):
        return float("inf")
    return max(float(np.max(np.abs(w - g))) for w, g in zip(want, got, strict=True))


def export_onnx(
    model: StreamingModel,
    card: ModelCard,
    path: str | Path,
    *,
    fp16: bool = False,
    tolerance: float | None = None,
    audio: Path = EXAMPLE_AUDIO,
) -> ParityReport:
    """Write ``model`` to ``path`` with ``card`` as metadata after checker and parity checks pass.

    Parity is checked on up to 64 real-audio contexts in one batch *and* on the first one alone
    (batch 1, as the runtime calls it), so a batch size baked into the graph is caught here.
    """
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
        proto = _to_fp16(proto)
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
    want = _torch_outputs(model, frames, mask)
    got = _run_onnx(data, {INPUT_FRAMES: frames, INPUT_MASK: mask}, isolate=fp16)
    one = _run_onnx(data, {INPUT_FRAMES: frames[:1], INPUT_MASK: mask[:1]}, isolate=fp16)
    diff = max(_max_diff(want, got), _max_diff([w[:1] for w in want], one))
    if not diff <= tolerance:
        raise ExportError(f"parity check failed for {path}: max |torch - onnxruntime| = {diff:.2e} > {tolerance:.0e}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(path.name + ".part")
    try:
        tmp_path.write_bytes(data)
        tmp_path.replace(path)  # atomic: a reader never sees a half-written model
    finally:
        tmp_path.unlink(missing_ok=True)
    return ParityReport(diff, tolerance, len(frames), path, fp16)


def export_main(args: argparse.Namespace) -> int:
    """``emotrack export CHECKPOINT -o MODEL.onnx [--fp16]``: load, export, check parity, print the report.

    ``args`` comes from the CLI's ``export`` parser (``checkpoint``, ``out``, ``fp16``, ``tolerance``,
    ``audio``). Failures raise :class:`~emotrack.errors.ModelError` (incl. :class:`ExportError`), which
    the CLI prints as one line.
    """
    from emotrack.training.checkpoint import load_checkpoint  # imports the model zoo

    checkpoint = Path(args.checkpoint)
    fp16 = bool(getattr(args, "fp16", False))
    output = getattr(args, "out", None) or checkpoint.with_name(checkpoint.stem + ("_fp16" if fp16 else "") + ".onnx")
    model, card, _ = load_checkpoint(checkpoint)
    report = export_onnx(
        model,
        card,
        output,
        fp16=fp16,
        tolerance=getattr(args, "tolerance", None),
        audio=getattr(args, "audio", None) or EXAMPLE_AUDIO,
    )
    print(report)
    return 0
