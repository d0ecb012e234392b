"""Smile-260 front end (optional ``opensmile`` extra) and the MCA model on its frames.

Audio is cut to the first few seconds of the bundled example: openSMILE costs ~40 ms per hop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("opensmile", reason="Smile-260 needs the optional extra: pip install 'emotrack[opensmile]'")

from emotrack.audio import load_audio  # noqa: E402
from emotrack.export.metadata import ModelCard  # noqa: E402
from emotrack.frontends import FRONTENDS, make_frontend  # noqa: E402
from emotrack.frontends.smile import Smile260  # noqa: E402
from emotrack.models.mca import MCA  # noqa: E402

SR = 16000
HOP = SR // 2


@pytest.fixture(scope="module")
def clip(example_audio: Path) -> np.ndarray:
    """First 6 s (12 hops) of the bundled example at 16 kHz."""
    return load_audio(example_audio, SR)[: 12 * HOP]


@pytest.fixture(scope="module")
def frames(clip: np.ndarray) -> np.ndarray:
    return Smile260().process_signal(clip)


def test_registered_and_rebuilt_from_params():
    fe = make_frontend("smile260", Smile260().params())
    assert FRONTENDS["smile260"] is Smile260
    assert isinstance(fe, Smile260) and fe.frame_shape == (260,)
    assert len(fe.feature_names) == 260 and fe.feature_names[0] == "F0final_sma_mean"
    assert fe.feature_names[130] == "F0final_sma_de_mean" and fe.feature_names[-1] == "mfcc_sma_de[14]_stddev"


def test_shape_finite_and_informative(frames: np.ndarray):
    assert frames.shape == (12, 260) and frames.dtype == np.float32
    assert np.isfinite(frames).all()
    assert (frames[:, 65:130] >= 0).all() and (frames[:, 195:] >= 0).all()  # std blocks
    assert frames[2:].std(0).max() > 0  # frames change with the music


def test_causal(clip: np.ndarray, frames: np.ndarray):
    """Audio after hop k cannot change frames 0..k (no look-ahead past the hop end)."""
    k = 5
    changed = clip.copy()
    changed[(k + 1) * HOP :] = np.random.default_rng(0).standard_normal(len(clip) - (k + 1) * HOP) * 0.3
    other = Smile260().process_signal(changed)
    np.testing.assert_array_equal(other[: k + 1], frames[: k + 1])
    assert not np.array_equal(other[k + 1], frames[k + 1])


def test_incremental_equals_process_signal(clip: np.ndarray, frames: np.ndarray):
    fe = Smile260()
    fe.process(clip[:HOP] * 0.5)  # dirty state, then a new stream
    fe.reset()
    hops = np.stack([fe.process(clip[i * HOP : (i + 1) * HOP]) for i in range(6)])
    np.testing.assert_array_equal(hops, frames[:6])


def test_bad_arguments():
    with pytest.raises(ValueError):
        Smile260(history_seconds=0.305)
    with pytest.raises(ValueError):
        Smile260().process(np.zeros(100, np.float32))
    with pytest.raises(ValueError):
        MCA(frontend="wave")


def test_mca_smile260_is_causal():
    torch.manual_seed(0)
    model = MCA(frontend="smile260", n_features=260, d=16, hidden=16).eval()
    assert model.frontend == "smile260" and MCA.frontend == "logmel" and MCA().frontend == "logmel"
    x = torch.randn(1, 20, 260)
    mask = torch.ones(1, 20)
    with torch.no_grad():
        emb = model.encode(x)
        x2 = x.clone()
        x2[:, 12:] = torch.randn(1, 8, 260)
        emb2 = model.encode(x2)
        torch.testing.assert_close(emb[:, :12], emb2[:, :12], rtol=0, atol=0)  # frame-wise encoder
        va = model(x, mask)
    assert va.shape == (1, 2) and torch.isfinite(va).all()


def test_mca_smile260_onnx_parity(tmp_path: Path, clip: np.ndarray):
    import soundfile as sf

    from emotrack.export.onnx import export_onnx
    from emotrack.inference import ModelRunner

    audio = tmp_path / "short.wav"
    sf.write(audio, clip, SR)  # parity contexts from 12 hops, not the whole 65 s example
    torch.manual_seed(0)
    model = MCA(frontend="smile260", n_features=260, d=16, hidden=16, pool_stats=True)
    card = ModelCard(name="mca", version="0.0.1", frontend={"name": "smile260", "params": Smile260().params()})
    report = export_onnx(model, card, tmp_path / "mca_smile.onnx", audio=audio)
    assert report.max_abs_diff <= report.tolerance and report.n_contexts == 12
    loaded = ModelRunner(tmp_path / "mca_smile.onnx", provider="cpu")
    assert loaded.card.frontend["name"] == "smile260" and isinstance(loaded.frontend, Smile260)
