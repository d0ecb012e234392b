"""One-off conversion of musicnn's TensorFlow checkpoint to the bundled ONNX graph.

Not imported by emotrack: it needs TensorFlow 1.x-style graph code, which the runtime must not carry.
Run it in a separate environment (TensorFlow's wheels need numpy < 2)::

    python -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu==2.15.1 "numpy<2" "protobuf<5" tf2onnx "onnx<1.17" onnxruntime
    /tmp/tfenv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/tfenv/bin/python -m emotrack.export.musicnn_tf emotrack/assets/frontends/musicnn_msd.onnx [MSD_musicnn]

It rebuilds ``MSD_musicnn`` with musicnn's own ``models.define_model`` in inference mode (batch
normalisation frozen, dropout off), restores the checkpoint shipped in the wheel, freezes it and converts
it with tf2onnx (opset 17). The graph takes ``logmel`` ``[batch, 187, 96]`` and returns ``taggram``
(sigmoid tag probabilities), ``mean_pool``, ``max_pool`` and ``penultimate``
(:data:`emotrack.frontends.musicnn.LAYERS`). The conversion is checked against TensorFlow on random
log-mel input and fails above 1e-3.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

OUTPUTS = ("taggram", "mean_pool", "max_pool", "penultimate")


def convert(out: Path, model: str = "MSD_musicnn") -> float:
    """Write the ONNX graph to ``out``; returns the largest absolute difference to TensorFlow."""
    import musicnn
    import onnx
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96], name="logmel")
        logits, _, _, _, _, _, mean_pool, max_pool, penultimate = models.define_model(x, False, model, 50)
        tensors = dict(zip(OUTPUTS, (tf.nn.sigmoid(logits), mean_pool, max_pool, penultimate), strict=True))
        tensors = {k: tf.identity(v, name=k) for k, v in tensors.items()}
        session = tf.compat.v1.Session(graph=graph)
        tf.compat.v1.train.Saver().restore(session, str(Path(musicnn.__file__).parent / model) + "/")
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), list(OUTPUTS))
        rng = np.random.default_rng(0)
        probe = np.log10(1 + 10000 * rng.gamma(0.5, 0.01, (3, 187, 96))).astype(np.float32)
        reference = session.run(list(tensors.values()), {x: probe})

    proto, _ = tf2onnx.convert.from_graph_def(
        frozen, input_names=["logmel:0"], output_names=[f"{k}:0" for k in OUTPUTS], opset=17
    )
    renames = {"logmel:0": "logmel", **{f"{k}:0": k for k in OUTPUTS}}
    for value in [*proto.graph.input, *proto.graph.output]:
        value.name = renames.get(value.name, value.name)
    for node in proto.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    proto.producer_name = "emotrack musicnn_tf.py"
    proto.doc_string = f"musicnn {model} (Pons & Serra 2019), ISC licence, converted from musicnn 0.1.0"
    onnx.checker.check_model(proto)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))

    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(list(OUTPUTS), {"logmel": probe})
    worst = max(float(np.abs(r - g).max()) for r, g in zip(reference, got, strict=True))
    if worst > 1e-3:
        raise SystemExit(f"conversion differs from TensorFlow by {worst:.2e}")
    return worst


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "emotrack/assets/frontends/musicnn_msd.onnx")
    network = sys.argv[2] if len(sys.argv) > 2 else "MSD_musicnn"  # the wheel also holds MTT_musicnn
    print(f"{target}: max |onnx - tensorflow| = {convert(target, network):.2e}")
