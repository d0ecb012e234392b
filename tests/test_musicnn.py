"""musicnn front end: the bundled graph is musicnn's network, its input is musicnn's, and it is causal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from checks import assert_causal_and_incremental

from emotrack.audio import load_audio
from emotrack.frontends import Musicnn, make_frontend
from emotrack.frontends.musicnn import LAYERS, musicnn_logmel

REFERENCE = Path(__file__).parent / "data" / "musicnn_example_reference.npz"
"""TensorFlow outputs of musicnn's own ``MSD_musicnn`` (musicnn 0.1.0) for two windows of the example
recording, written once by the conversion environment (``emotrack/export/musicnn_tf.py``)."""


@pytest.fixture(scope="module")
def example_16k(example_audio) -> np.ndarray:
    return load_audio(example_audio, 16000)


def test_streamed_embeddings_equal_tensorflow_musicnn(example_16k):
    """Frame ``h - 1`` ends at hop ``h``: streaming the file reproduces TensorFlow's musicnn on that window."""
    ref = np.load(REFERENCE)
    hops = ref["hops"]
    fe = Musicnn(layer="taggram")
    frames = fe.process_signal(example_16k[: int(hops.max()) * fe.hop_length])
    for i, h in enumerate(hops):
        assert np.max(np.abs(frames[h - 1] - ref["taggram"][i])) < 1e-4
        window = example_16k[h * fe.hop_length - fe.window_length : h * fe.hop_length]
        outs = fe.session.run(list(LAYERS), {"logmel": musicnn_logmel(window, fe._mel, fe._hann)[None]})
        for name, out in zip(LAYERS, outs, strict=True):
            assert out.shape == (1, LAYERS[name])
            scale = max(1.0, float(np.abs(ref[name][i]).max()))
            assert np.max(np.abs(out[0] - ref[name][i])) < 1e-4 * scale, name


def test_input_is_librosa_melspectrogram(example_16k):
    """Same STFT, mel filters and log compression as musicnn's librosa pipeline (frames not centred)."""
    librosa = pytest.importorskip("librosa")
    fe = Musicnn()
    window = example_16k[16000 * 20 : 16000 * 20 + fe.window_length]
    mel = librosa.feature.melspectrogram(y=window, sr=16000, n_fft=512, hop_length=256, n_mels=96, center=False)
    ref = np.log10(1 + 10000 * mel.T)
    ours = musicnn_logmel(window, fe._mel, fe._hann)
    assert ours.shape == (187, 96)
    assert np.max(np.abs(ours - ref)) < 1e-3


def test_causal_and_incremental(example_16k):
    y = example_16k[: 8000 * 8]
    fe = make_frontend("musicnn", {"layer": "penultimate"})
    whole = assert_causal_and_incremental(fe, y, change_hop=6)
    assert whole.shape == (8, 200)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="16000"):
        Musicnn(sample_rate=22050)
    with pytest.raises(ValueError, match="unknown musicnn layer"):
        Musicnn(layer="logits")


def test_missing_or_corrupt_network_is_a_model_error(tmp_path, monkeypatch):
    from emotrack.errors import ModelError
    from emotrack.frontends import musicnn

    bad = tmp_path / "musicnn_msd.onnx"
    bad.write_bytes(b"not an onnx graph")
    monkeypatch.setitem(musicnn.WEIGHTS, "broken", bad)
    monkeypatch.setitem(musicnn.WEIGHTS, "gone", tmp_path / "missing.onnx")
    for name in ("broken", "gone"):
        with pytest.raises(ModelError, match="cannot load the musicnn network"):
            Musicnn(weights=name)


def test_network_follows_the_model_runtime_settings(example_16k):
    """``--threads`` reaches the musicnn network too, and more threads give the same embedding."""
    from emotrack.inference import ModelRunner

    runner = ModelRunner("mca-musicnn", provider="cpu", threads=2)
    assert runner.frontend.session.get_session_options().intra_op_num_threads == 2
    one = Musicnn()
    assert one.session.get_session_options().intra_op_num_threads == 1
    y = example_16k[: 8000 * 8]
    assert np.allclose(runner.frontend.process_signal(y), one.process_signal(y), atol=1e-5)


def test_copies_share_the_network_but_not_the_audio_history(example_16k):
    """Many streams in one process: each copy keeps its own 3 s window and reuses the one session."""
    import copy

    fe = Musicnn()
    first = fe.process(example_16k[:8000])
    twin = copy.deepcopy(fe)
    assert twin.session is fe.session
    twin.process(np.zeros(8000, np.float32))
    assert np.array_equal(fe._buf[-8000:], example_16k[:8000])
    fe.reset()
    assert np.array_equal(fe.process(example_16k[:8000]), first)
