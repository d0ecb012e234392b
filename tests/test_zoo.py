"""The model zoo's streaming contract, model by model, on real audio (the bundled example).

(a) causality: changing the audio after hop ``k`` leaves every output up to hop ``k`` bit-identical;
(b) the mask: whatever padded frames hold, the output is the same;
(c) ONNX parity: :func:`export_onnx` passes and ONNX Runtime reproduces torch on real contexts;
(d) the exported file runs through the real ``emotrack analyze`` CLI.
Per-hop timing is measured in ``bench/``, not asserted here.
"""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from emotrack.audio import load_audio
from emotrack.context import unfold
from emotrack.export.metadata import INPUT_FRAMES, INPUT_MASK, ModelCard
from emotrack.export.onnx import EXAMPLE_AUDIO, export_onnx
from emotrack.frontends import FrontEnd, Normalizer, make_frontend
from emotrack.models import MODELS, build_model
from emotrack.models.common import StreamingModel
from emotrack.models.registry import ARCHITECTURES, EXTRA_OUTPUTS

ZOO = sorted(MODELS)
VARIANTS = {
    **{name: (name, {}) for name in ZOO},
    "mca-tonal": ("mca", {"frontend": "logmel_tonal"}),
    "mca-musicnn": ("mca", {"frontend": "musicnn"}),
    "mca-musicnn-tonal": ("mca", {"frontend": "musicnn_tonal"}),
}
"""Test cases: every zoo model with its default front end, plus front-end variants a model supports."""
EXCERPT_S = 20.0  # seconds of the example used for the torch checks (keeps CI fast)
CHANGE_AFTER = 23  # hop k: audio from the end of hop k on is replaced by noise


@dataclass
class Case:
    name: str
    model: StreamingModel
    frontend: FrontEnd
    normalizer: Normalizer
    signal: np.ndarray
    _cache: dict[str, object] = field(default_factory=dict)

    def contexts(self, signal: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Every hop's context of ``signal`` (default: the unchanged excerpt, cached)."""
        if signal is None:
            if "contexts" not in self._cache:
                self._cache["contexts"] = self.contexts(self.signal)
            return self._cache["contexts"]
        frames = self.normalizer(self.frontend.process_signal(signal))
        return unfold(frames, self.model.context_frames)

    def outputs(self) -> list[np.ndarray]:
        """Torch outputs for every hop of the unchanged excerpt (cached: several tests compare to them)."""
        if "outputs" not in self._cache:
            self._cache["outputs"] = _run(self.model, *self.contexts())
        return self._cache["outputs"]


def _simple_normalizer(frontend: FrontEnd, frames: np.ndarray) -> Normalizer:
    """Per-mel statistics for log-mel, one scalar pair for waveforms (fit once, reused for every variant)."""
    axes = tuple(range(frames.ndim - 1)) if frontend.name.startswith("logmel") else tuple(range(frames.ndim))
    return Normalizer.fit(frames, axes)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def case(request: pytest.FixtureRequest) -> Case:
    torch.manual_seed(0)
    name, kwargs = VARIANTS[request.param]
    model = build_model(name, **kwargs).eval()
    frontend = make_frontend(model.frontend)
    signal = load_audio(EXAMPLE_AUDIO, frontend.sample_rate)
    signal = signal[: int(EXCERPT_S * frontend.sample_rate)].copy()
    normalizer = _simple_normalizer(frontend, frontend.process_signal(signal))
    return Case(name, model, frontend, normalizer, signal)


def _run(model: StreamingModel, frames: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """Torch outputs on one thread: multi-threaded BLAS may split sums differently from call to call
    on a busy machine (dynamic thread counts), which changes last bits without any causality leak."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(frames), torch.from_numpy(mask))
    finally:
        torch.set_num_threads(threads)
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def _card(case: Case) -> ModelCard:
    return ModelCard(
        name=case.name,
        version="0.0.0-test",
        frontend={"name": case.frontend.name, "params": case.frontend.params()},
        architecture=ARCHITECTURES[case.name],
        normalization=case.normalizer.to_dict(),
        outputs={"va": ["valence", "arousal"], "range": [-1.0, 1.0], "extra": EXTRA_OUTPUTS.get(case.name, {})},
    )


def test_causality_changing_audio_after_hop_keeps_earlier_outputs(case: Case) -> None:
    """Changing audio after hop k leaves that hop's (and every earlier hop's) output bit-identical."""
    k = CHANGE_AFTER
    hop = case.frontend.hop_length
    changed = case.signal.copy()
    rng = np.random.default_rng(1)
    changed[(k + 1) * hop :] = rng.normal(0, 0.3, len(changed) - (k + 1) * hop).astype(np.float32)

    before = case.outputs()
    after = _run(case.model, *case.contexts(changed))
    assert len(before[0]) == len(case.signal) // hop  # one (V, A) per hop
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(b[: k + 1], a[: k + 1])
    assert not np.allclose(before[0][k + 1 :], after[0][k + 1 :]), "the model ignores the audio after hop k"
    assert np.all(np.abs(before[0]) <= 1.0)


def test_mask_padding_content_is_ignored(case: Case) -> None:
    """At stream start the padded (masked) frames may hold anything: the output does not change."""
    frames, mask = case.contexts()
    frames, mask = frames[: case.model.context_frames], mask[: case.model.context_frames]  # start-up hops
    assert (mask == 0).any()
    garbage = frames.copy()
    rng = np.random.default_rng(2)
    pad = mask == 0
    garbage[pad] = rng.normal(0, 50, garbage[pad].shape).astype(np.float32)
    for clean, dirty in zip(_run(case.model, frames, mask), _run(case.model, garbage, mask), strict=True):
        np.testing.assert_array_equal(clean, dirty)


@pytest.fixture(scope="module")
def exported(case: Case, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp(case.name) / f"{case.name}-{case.frontend.name}.onnx"
    report = export_onnx(case.model, _card(case), path)
    assert report.max_abs_diff <= 1e-4
    return path


def test_onnx_parity_on_real_audio(case: Case, exported: Path) -> None:
    frames, mask = case.contexts()
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    got = session.run(None, {INPUT_FRAMES: frames, INPUT_MASK: mask})
    want = case.outputs()
    assert [o.name for o in session.get_outputs()] == ["va", *case.model.extra_outputs]
    for w, g in zip(want, got, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-4)
    assert exported.stat().st_size < 10_000_000


@pytest.mark.skipif(importlib.util.find_spec("emotrack.__main__") is None, reason="`python -m emotrack` not there yet")
def test_exported_model_runs_in_analyze_cli(case: Case, exported: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "emotrack", "analyze", str(EXAMPLE_AUDIO), "--out", str(out), "--model", str(exported)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    with open(out / "example.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert ",".join(rows[0]).startswith("time_s,valence,arousal")
    n_hops = len(load_audio(EXAMPLE_AUDIO, case.frontend.sample_rate)) // case.frontend.hop_length
    assert len(rows) - 1 == n_hops
    times = np.array([float(r[0]) for r in rows[1:]])
    np.testing.assert_allclose(np.diff(times), 0.5)
    va = np.array([[float(r[1]), float(r[2])] for r in rows[1:]])
    assert np.all(np.isfinite(va)) and np.all(np.abs(va) <= 1.0)


def test_dsaml_attention_maps_loss_and_head_parameters() -> None:
    """DSAML-C exposes band-limited attention maps for the diagonal loss and a separable head."""
    from emotrack.models.dsaml import diagonal_attention_loss

    torch.manual_seed(0)
    model = build_model("dsaml").train()
    frames = torch.randn(2, 20, 25, 64)
    mask = torch.ones(2, 20)
    mask[0, :12] = 0
    out = model.outputs(frames, mask)
    attn = out["attn"]
    assert attn.shape == (2, 3, 20, 20)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 3, 20))
    lag = torch.arange(20)[:, None] - torch.arange(20)[None, :]
    for s, w in enumerate((5, 10, 20)):
        assert attn[:, s][:, (lag < 0) | (lag >= w)].abs().max() == 0  # causal band of w frames
    assert attn[0, :, 12:, :12].abs().max() == 0  # real frames never attend to padding
    loss = diagonal_attention_loss(out)
    loss.backward()
    assert torch.isfinite(loss) and model.layers[-1].attn.qkv.weight.grad is not None
    head = {id(p) for p in model.head_parameters()}
    assert head and head < {id(p) for p in model.parameters()}
