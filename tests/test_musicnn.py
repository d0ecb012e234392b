"""musicnn front end: the converted graph is musicnn's network, its streaming form computes the causal
definition exactly, and it is causal and incremental."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from checks import assert_causal_and_incremental

from emotrack.audio import load_audio
from emotrack.frontends import Musicnn, make_frontend
from emotrack.frontends.musicnn import (
    LAYERS,
    N_FRAMES,
    STATE_SHAPES,
    WIDTHS,
    musicnn_logmel,
    pool,
)

REFERENCE = Path(__file__).parent / "data" / "musicnn_example_reference.npz"
"""TensorFlow outputs of musicnn's own ``MSD_musicnn`` (musicnn 0.1.0) for two windows of the example
recording (3.008 s ending at hop ``hops[i]``, 256-sample frames), written once by the conversion environment
(``emotrack/export/musicnn_tf.py``)."""

CONVERTED = Path(__file__).parents[1] / "emotrack" / "assets" / "frontends" / "musicnn_msd.onnx"


@pytest.fixture(scope="module")
def example_16k(example_audio) -> np.ndarray:
    return load_audio(example_audio, 16000)


def test_converted_graph_equals_tensorflow_musicnn(example_16k):
    """The graph the streaming form is built from reproduces TensorFlow's musicnn on its own windows."""
    ref = np.load(REFERENCE)
    session = ort.InferenceSession(str(CONVERTED), providers=["CPUExecutionProvider"])
    fe = Musicnn()
    length = 512 + 186 * 256
    for i, h in enumerate(ref["hops"]):
        window = example_16k[h * 8000 - length : h * 8000]
        outs = session.run(list(LAYERS), {"logmel": musicnn_logmel(window, fe._mel, fe._hann, hop=256)[None]})
        for name, out in zip(LAYERS, outs, strict=True):
            scale = max(1.0, float(np.abs(ref[name][i]).max()))
            assert np.max(np.abs(out[0] - ref[name][i])) < 1e-4 * scale, name


def streamed_musicnn_frames(logmel: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """The streaming definition computed from scratch in float64 with plain numpy, in musicnn's own layer order
    (conv -> ReLU -> batch norm -> max over frequency): per-frame activations ``[T, 753]`` of a whole stream.

    Frame ``t``'s front-end channels are musicnn's activations centred at input frame ``t - 64`` (zeros before
    the stream), mid-end layer ``i``'s are centred ``3 i`` frames earlier still."""
    x = np.concatenate([np.zeros((127, 96)), logmel.astype(np.float64) * w["input_scale"] + w["input_shift"]])
    branches = []
    for key in ("f74", "f77", "s128", "s64", "s32"):
        kernel = w[f"{key}_w"][:, 0].astype(np.float64)  # [C, k, width]
        k = kernel.shape[1]
        start = 127 - 64 - (k - 1 - k // 2)  # first input frame of output frame 0's kernel
        patches = np.lib.stride_tricks.sliding_window_view(x[start:], kernel.shape[1:])[: len(logmel)]
        y = np.einsum("tfkw,ckw->tcf", patches, kernel) + w[f"{key}_b"][None, :, None]
        y = np.maximum(y, 0) * w[f"{key}_scale"][None, :, None] + w[f"{key}_shift"][None, :, None]
        branches.append(y.max(axis=2))
    front = np.concatenate(branches, axis=1)

    def mid(inp: np.ndarray, key: str) -> np.ndarray:
        padded = np.concatenate([np.zeros((6, inp.shape[1])), inp])
        y = np.einsum("tck,ock->to", np.lib.stride_tricks.sliding_window_view(padded, 7, axis=0), w[f"{key}_w"])
        return np.maximum(y + w[f"{key}_b"], 0) * w[f"{key}_scale"] + w[f"{key}_shift"]

    def delayed(inp: np.ndarray) -> np.ndarray:
        return np.concatenate([np.zeros((3, inp.shape[1])), inp[:-3]])

    m1 = mid(front, "m1")
    m2 = mid(m1, "m2") + delayed(m1)
    m3 = mid(m2, "m3") + delayed(m2)
    return np.concatenate([front, m1, m2, m3], axis=1)


def test_streamed_frames_are_musicnns_own_activations(example_16k):
    """Wherever musicnn's own graph sees a frame's whole receptive field inside its 187-frame window, the
    streamed activation of that frame (front end 64 frames later, mid-end layer i 64 + 3 i) is the same."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(CONVERTED))
    model.graph.output.append(onnx.helper.make_tensor_value_info("concat_1:0", onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    fe = Musicnn()
    y = example_16k[16000 * 20 : 16000 * 20 + 16 * 8000]
    logmel = musicnn_logmel(np.concatenate([np.zeros(fe.carry, np.float32), y]), fe._mel, fe._hann)
    state = {k: np.zeros((1, *v), np.float32) for k, v in STATE_SHAPES.items()}
    streamed = fe.session.run(None, {"logmel": logmel[None], **state})[0][0]
    start = 200
    own = session.run(["concat_1:0"], {"logmel": logmel[None, start : start + 187]})[0][0, :, :, 0]
    groups = ((slice(0, 561), 64), (slice(561, 625), 67), (slice(625, 689), 70), (slice(689, 753), 73))
    for channels, delay in groups:  # float32 in both: 1e-5 of the layer group's largest activation
        want = own[73 : 187 - 73, channels]
        got = streamed[start + 73 + delay : start + 187 - 73 + delay, channels]
        assert np.max(np.abs(got - want)) < 1e-5 * float(np.abs(own[:, channels]).max())


def test_streamed_embeddings_equal_the_causal_definition_from_scratch(example_16k):
    """Hop by hop, the stateful graph on 32 new frames gives what the definition gives when everything is
    recomputed from the stream's start, for every output layer, to 1e-5 of scale."""
    pytest.importorskip("onnx")
    from emotrack.export.musicnn_stream import source_weights

    n_hops = 12  # 384 frames: the pooling window fills (187) and slides
    y = example_16k[16000 * 20 : 16000 * 20 + n_hops * 8000]
    fe = Musicnn()
    logmel = musicnn_logmel(np.concatenate([np.zeros(262, np.float32), y]), fe._mel, fe._hann)
    assert logmel.shape == (n_hops * 32, 96)
    w = {k: v.astype(np.float64) for k, v in source_weights().items()}
    reference = streamed_musicnn_frames(logmel, w)
    pooled = np.stack([pool(reference[max(0, e - N_FRAMES) : e]) for e in 32 * np.arange(1, n_hops + 1)])
    penultimate = np.maximum(0, (pooled * w["pool_scale"] + w["pool_shift"]) @ w["dense_w"] + w["dense_b"])
    penultimate = penultimate * w["pen_scale"] + w["pen_shift"]
    layers = {"max_pool": pooled[:, 0::2], "mean_pool": pooled[:, 1::2], "pooled": pooled, "penultimate": penultimate,
              "taggram": 1 / (1 + np.exp(-(penultimate @ w["tags_w"] + w["tags_b"])))}
    for layer in WIDTHS:
        fe = Musicnn(layer=layer)
        streamed = np.stack([fe.process(y[i * 8000 : (i + 1) * 8000]) for i in range(n_hops)])
        want = layers[layer]
        scale = float(np.abs(want).max())
        assert np.max(np.abs(streamed - want)) < 1e-5 * scale, layer


def test_input_is_librosa_melspectrogram(example_16k):
    """Same STFT, mel filters and log compression as musicnn's librosa pipeline (frames not centred)."""
    librosa = pytest.importorskip("librosa")
    fe = Musicnn()
    window = example_16k[16000 * 20 : 16000 * 20 + 512 + 186 * 250]
    mel = librosa.feature.melspectrogram(y=window, sr=16000, n_fft=512, hop_length=250, n_mels=96, center=False)
    ours = musicnn_logmel(window, fe._mel, fe._hann)
    assert ours.shape == (187, 96)
    assert np.max(np.abs(ours - np.log10(1 + 10000 * mel.T))) < 1e-3


def test_causal_and_incremental(example_16k):
    """Whole-file ``process_signal`` (large calls) equals hop-by-hop ``process`` to 1e-5 of scale."""
    y = example_16k[: 8000 * 40]  # more hops than one offline chunk (16)
    fe = make_frontend("musicnn", {"layer": "penultimate"})
    whole = assert_causal_and_incremental(fe, y, change_hop=35, rtol=1e-5)
    assert whole.shape == (40, 200)


def test_many_streams_in_one_call_equal_each_stream_alone(example_16k):
    """``process_many`` batches streams at different points of their audio; each gets its own result."""
    base = Musicnn()
    streams = [copy.deepcopy(base) for _ in range(3)]
    alone = [copy.deepcopy(base) for _ in range(3)]
    offsets = (0, 16000 * 7, 16000 * 31)
    for h in range(8):
        hops = np.stack([example_16k[o + h * 8000 : o + (h + 1) * 8000] for o in offsets])
        together = Musicnn.process_many(streams, hops)
        single = np.stack([fe.process(hop) for fe, hop in zip(alone, hops, strict=True)])
        assert np.allclose(together, single, rtol=0, atol=1e-5 * float(np.abs(single).max()))
    assert not np.allclose(together[0], together[1])


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="16000"):
        Musicnn(sample_rate=22050)
    with pytest.raises(ValueError, match="unknown musicnn layer"):
        Musicnn(layer="logits")
    with pytest.raises(ValueError, match="250-sample grid"):
        Musicnn(stft_hop=256)


def test_missing_or_corrupt_network_is_a_model_error(tmp_path, monkeypatch):
    from emotrack.errors import ModelError
    from emotrack.frontends import musicnn

    bad = tmp_path / "musicnn_msd_stream.onnx"
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
    one = type(runner.frontend)()  # the default's front end (a Musicnn subclass) with its default settings
    assert one.session.get_session_options().intra_op_num_threads == 1
    y = example_16k[: 8000 * 8]
    assert np.allclose(runner.frontend.process_signal(y), one.process_signal(y), atol=1e-4)


def test_copies_share_the_network_but_not_the_stream_state(example_16k):
    """Many streams in one process: each copy keeps its own state and pooling window, and reuses the session."""
    fe = Musicnn()
    first = fe.process(example_16k[:8000])
    twin = copy.deepcopy(fe)
    assert twin.session is fe.session
    twin.process(np.zeros(8000, np.float32))
    assert np.array_equal(fe._audio, example_16k[8000 - fe.carry : 8000])
    assert not np.array_equal(fe._ring, twin._ring)
    fe.reset()
    assert np.array_equal(fe.process(example_16k[:8000]), first)
