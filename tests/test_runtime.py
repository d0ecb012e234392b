"""The runtime path: no torch, block-size invariance, model contract checks, provider choice."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from emotrack.audio import iter_file_blocks
from emotrack.errors import ModelError
from emotrack.export.metadata import ModelCard
from emotrack.inference import ModelRunner
from emotrack.realtime.tracker import Tracker
from tests.conftest import assert_one_line_error


def test_runtime_path_imports_no_torch(example_audio, tmp_path):
    code = (
        "import sys\n"
        "from emotrack.cli import main\n"
        f"rc = main(['analyze', {str(example_audio)!r}, '--out', {str(tmp_path)!r}, '-q'])\n"
        f"rc |= main(['run', '--file', {str(example_audio)!r}, '--fast', '--quiet', '--no-osc', '--ws-port', '0',"
        " '--duration', '2'])\n"
        "assert rc == 0, rc\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'onnx', 'sklearn'})\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def runner() -> ModelRunner:
    return ModelRunner("mca", provider="cpu")


def _track(runner: ModelRunner, path, block_seconds: float) -> np.ndarray:
    blocks = list(iter_file_blocks(path, block_seconds))
    tracker = Tracker(runner, 44100)
    out = []
    for b in blocks:
        out += tracker.process(b)
    out += tracker.finish()
    return np.array([[r.valence_raw, r.arousal_raw] for r in out])


def test_hops_do_not_depend_on_block_size(runner, example_audio):
    """Hops are cut by sample count: a sound card's block size cannot change the numbers."""
    a = _track(runner, example_audio, 0.02)
    b = _track(runner, example_audio, 0.37)
    assert a.shape == b.shape == (130, 2)
    assert np.max(np.abs(a - b)) < 1e-5


def test_stream_reset_repeats_exactly(runner, example_audio):
    tracker = Tracker(runner, 44100)
    block = next(iter_file_blocks(example_audio, 3.0))
    first = [r.valence_raw for r in tracker.process(block)]
    tracker.reset()
    again = [r.valence_raw for r in tracker.process(block)]
    assert first == again and len(first) >= 5  # the resampler holds back a few ms until the next block


def test_hop_latency_stamps_are_ordered(runner, example_audio):
    tracker = Tracker(runner, 44100)
    results = []
    for block in iter_file_blocks(example_audio, 0.1):
        results += tracker.process(block)
        if len(results) > 5:
            break
    for r in results:
        assert r.t_audio <= r.t_ready <= r.t_features <= r.t_inference <= r.t_smoothing
        assert all(v >= 0 for v in r.latency_ms().values())
        assert r.stream_time == pytest.approx(0.5 * (r.seq + 1))


def test_cuda_request_without_gpu_is_a_clean_error(cli, example_audio, tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        probe = ModelRunner("mca", provider="auto")
        if probe.provider == "cuda":
            pytest.skip("a CUDA device is present")
    res = cli("analyze", str(example_audio), "--out", str(tmp_path), "--provider", "cuda", "-q")
    assert_one_line_error(res, "cuda")


def test_auto_provider_is_quiet_and_reports_what_it_got(example_audio):
    code = "from emotrack.inference import ModelRunner; print(ModelRunner('mca', provider='auto').provider)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() in {"cpu", "cuda"}
    assert "Failed to load" not in proc.stderr and "[E:onnxruntime" not in proc.stderr


def test_model_card_roundtrip_and_inconsistency():
    card = ModelCard(name="x", version="1", frontend={"name": "logmel", "params": {}})
    again = ModelCard.from_properties(card.to_properties())
    assert again == card
    props = card.to_properties()
    props["emotrack.context"] = '{"frames": 4, "windows_s": [2.5, 5, 10], "hop_s": 0.5}'
    with pytest.raises(ModelError, match="does not fit"):
        ModelCard.from_properties(props)
    props = card.to_properties()
    del props["emotrack.frontend"]
    with pytest.raises(ModelError, match="lacks metadata emotrack.frontend"):
        ModelCard.from_properties(props)
    props = card.to_properties()
    props["emotrack.outputs"] = '{"va": ["arousal", "valence"]}'
    with pytest.raises(ModelError, match="ordered"):
        ModelCard.from_properties(props)
