"""Export from a checkpoint: the CLI entry point, metadata the runtime accepts, and parity as a gate.

A model only reaches disk when ONNX Runtime reproduces torch; a failed check must raise
:class:`ExportError` and leave no file behind (not even a partial one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emotrack.cli import main as cli_main
from emotrack.export.metadata import ModelCard
from emotrack.export.onnx import FP16_TOLERANCE, ExportError, export_onnx
from emotrack.frontends import make_frontend
from emotrack.inference import ModelRunner
from emotrack.models import build_model
from emotrack.models.mca import MCA
from emotrack.models.registry import ARCHITECTURES, EXTRA_OUTPUTS
from emotrack.training.checkpoint import save_checkpoint


def _card(name: str, frontend_name: str) -> ModelCard:
    frontend = make_frontend(frontend_name)
    std = [1.0] * 64 if frontend_name == "logmel" else 0.1
    mean = [-8.0] * 64 if frontend_name == "logmel" else 0.0
    return ModelCard(
        name=name,
        version="0.0.1",
        frontend={"name": frontend.name, "params": frontend.params()},
        architecture=ARCHITECTURES[name],
        normalization={"mean": mean, "std": std},
        outputs={"va": ["valence", "arousal"], "range": [-1.0, 1.0], "extra": EXTRA_OUTPUTS.get(name, {})},
        training={"data": "none (random init, test)"},
    )


def _checkpoint(tmp_path: Path, name: str, **kwargs: object) -> Path:
    torch.manual_seed(0)
    model = build_model(name, **kwargs).eval()
    path = tmp_path / f"{name}.pt"
    save_checkpoint(path, name, dict(kwargs), model, _card(name, model.frontend))
    return path


def test_export_main_writes_a_model_the_runtime_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _checkpoint(tmp_path, "sincnet")
    out = tmp_path / "models" / "sincnet.onnx"
    assert cli_main(["export", str(ckpt), "-o", str(out)]) == 0
    assert "parity OK" in capsys.readouterr().out
    runner = ModelRunner(out, provider="cpu")
    assert runner.card.name == "sincnet" and runner.card.frontend["name"] == "wave"
    assert runner.card.outputs["extra"] == EXTRA_OUTPUTS["sincnet"]
    frames = np.zeros((1, runner.card.context_frames, *runner.frontend.frame_shape), np.float32)
    mask = np.zeros((1, runner.card.context_frames), np.float32)
    mask[0, -1] = 1
    res = runner.run(frames, mask)
    assert res["va"].shape == (1, 2) and res["quadrant_logits"].shape == (1, 4)
    assert not list(tmp_path.glob("models/*.part"))


def test_zero_tolerance_fails_and_leaves_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _checkpoint(tmp_path, "dsaml")
    out = tmp_path / "dsaml.onnx"
    assert cli_main(["export", str(ckpt), "-o", str(out), "--tolerance", "0"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emotrack: error: parity check failed")
    assert not out.exists() and not list(tmp_path.glob("*.part"))


class _Diverging(MCA):
    """Torch and the traced graph disagree: eager output is shrunk, the ONNX graph is not."""

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        va = super().forward(frames, mask)
        return va if torch.onnx.is_in_onnx_export() else 0.5 * va


def test_diverging_model_fails_parity_and_leaves_no_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    out = tmp_path / "bad.onnx"
    with pytest.raises(ExportError, match="parity"):
        export_onnx(_Diverging().eval(), _card("mca", "logmel"), out)
    assert not out.exists()


def test_fp16_export_within_stated_tolerance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _checkpoint(tmp_path, "dsaml")
    fp32, fp16 = tmp_path / "dsaml.onnx", tmp_path / "dsaml_fp16.onnx"  # fp16: the default output name
    assert cli_main(["export", str(ckpt), "-o", str(fp32)]) == 0
    assert cli_main(["export", str(ckpt), "--fp16"]) == 0
    assert "float16 parity OK" in capsys.readouterr().out
    assert fp16.stat().st_size < 0.75 * fp32.stat().st_size  # weights stored as float16
    runner = ModelRunner(fp16, provider="cpu")  # float32 I/O: the runtime feeds it like any model
    ref = ModelRunner(fp32, provider="cpu")
    rng = np.random.default_rng(0)
    frames = rng.normal(0, 1, (4, 20, 25, 64)).astype(np.float32)
    mask = np.ones((4, 20), np.float32)
    diff = np.abs(runner.run(frames, mask)["va"] - ref.run(frames, mask)["va"]).max()
    assert diff <= FP16_TOLERANCE
