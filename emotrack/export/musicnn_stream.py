"""Build the streaming musicnn graph from the converted one: only new frames are computed each hop.

Why: musicnn's network (``assets/frontends/musicnn_msd.onnx``) maps a 3 s log-mel window to pooled
statistics. Every layer before the pooling is a convolution (or a pooling over frequency) along time, so
when a 0.5 s hop adds 32 frames, 5/6 of a from-scratch window's work was already done at the previous
hop. This script rewrites the network as a *stateful* graph that computes each frame once:

* every convolution keeps the inputs it still needs as graph state, passed in and returned, so a call on
  ``n`` new frames computes exactly ``n`` output frames per layer;
* the activations stay musicnn's own, "same"-padded and aligned across branches: output frame ``t`` holds
  the front-end activations centred at input frame ``t - LAG`` (``LAG`` = 64, half the longest temporal
  kernel, so that kernel has its whole future) and mid-end layer ``i``'s centred ``3 i`` frames earlier. A
  causal relabelling of each kernel without this alignment would feed the pretrained mid-end timbral and
  temporal features a second apart (tried: the embedding's median cosine to musicnn's fell to 0.71, against
  0.99 aligned);
* batch norm after ReLU and max-pool over frequency is computed after the pool, on ``[T, C]`` instead of
  ``[T, C, F]``: ``max_f(a * relu(x) + b) = a * relu(s * max_f(s * x)) + b`` with ``s = sign(a)``, so
  the sign goes into the convolution's weights. That is exact, not an approximation.

The price is latency: the newest frame's features describe the music about 1.1 s before the hop's end.

The graph ``musicnn_msd_stream.onnx`` takes ``logmel [B, n, 96]`` and the four state tensors
(:data:`STATE_SHAPES`) and returns ``frames [B, n, 753]`` (the 561 front-end and 3 x 64 mid-end channels
per frame) and the next state. Pooling over the newest 187 frames stays in numpy
(:class:`emotrack.frontends.musicnn.Musicnn`); the two dense layers after it are ``musicnn_msd_backend.onnx``
(0.3 M multiply-adds per hop).

Run it once after the conversion (needs the ``train`` extra for ``onnx``); another converted musicnn network of
the same architecture (``MTT_musicnn``) is rewritten the same way, beside its source::

    python -m emotrack.export.musicnn_stream [SOURCE.onnx]

Nothing imports this at run time; ``tests/test_musicnn.py`` checks the bundled graph against musicnn's own
activations and against a numpy implementation of the same definition computed from scratch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from emotrack.frontends.musicnn import N_MELS, STATE_SHAPES

SOURCE = Path(__file__).resolve().parents[1] / "assets" / "frontends" / "musicnn_msd.onnx"

LAG = 64
"""Frames by which the front-end channels trail the newest input frame: half the longest temporal kernel,
so that every branch sees its whole receptive field (1.0 s at 250 samples per frame; the mid-end adds 3
frames per layer)."""


def source_weights(path: Path = SOURCE) -> dict[str, np.ndarray]:
    """musicnn's weights by role, read from the converted graph, with every batch norm as ``(scale, shift)``.

    Keys: ``input`` (scalar BN), ``f74``/``f77`` (timbral), ``s128``/``s64``/``s32`` (temporal),
    ``m1``/``m2``/``m3`` (mid-end, as conv1d ``[out, in, k]``), each with ``_w``, ``_b``, ``_scale``,
    ``_shift``; ``pool_scale``/``pool_shift`` (BN of the pooled vector), ``dense_w``/``dense_b``,
    ``pen_scale``/``pen_shift``, ``tags_w``/``tags_b``.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}

    def bn(prefix: str) -> tuple[np.ndarray, np.ndarray]:
        node = next(n for n in model.graph.node if n.op_type == "BatchNormalization" and n.input[1].startswith(prefix))
        eps = next(a.f for a in node.attribute if a.name == "epsilon")
        gamma, beta, mean, var = (init[i].astype(np.float64) for i in node.input[1:])
        scale = gamma / np.sqrt(var + eps)
        return scale.astype(np.float32), (beta - mean * scale).astype(np.float32)

    w: dict[str, np.ndarray] = {}
    w["input_scale"], w["input_shift"] = bn("batch_normalization/")
    convs = {"f74": ("conv2d", "batch_normalization_1/"), "f77": ("conv2d_1", "batch_normalization_2/"),
             "s128": ("conv2d_2", "batch_normalization_3/"), "s64": ("conv2d_3", "batch_normalization_4/"),
             "s32": ("conv2d_4", "batch_normalization_5/"), "m1": ("conv2d_5", "batch_normalization_6/"),
             "m2": ("conv2d_6", "batch_normalization_7/"), "m3": ("conv2d_7", "batch_normalization_8/")}
    for key, (conv, norm) in convs.items():
        kernel = init[f"{conv}/Conv2D/ReadVariableOp:0"]
        if key.startswith("m"):  # conv2d over [T, C] with a [7, C] kernel == conv1d over C channels
            kernel = kernel[:, 0].transpose(0, 2, 1)
        w[f"{key}_w"] = np.ascontiguousarray(kernel, np.float32)
        w[f"{key}_b"] = init[f"{conv}/BiasAdd/ReadVariableOp:0"].astype(np.float32)
        w[f"{key}_scale"], w[f"{key}_shift"] = bn(norm)
    w["pool_scale"] = init["batch_normalization_9/batchnorm/mul:0"]
    w["pool_shift"] = init["batch_normalization_9/batchnorm/sub:0"]
    w["dense_w"] = init["dense/MatMul/ReadVariableOp:0"]
    w["dense_b"] = init["dense/BiasAdd/ReadVariableOp:0"]
    w["pen_scale"] = init["batch_normalization_10/batchnorm/mul:0"]
    w["pen_shift"] = init["batch_normalization_10/batchnorm/sub:0"]
    w["tags_w"] = init["dense_1/MatMul/ReadVariableOp:0"]
    w["tags_b"] = init["dense_1/BiasAdd/ReadVariableOp:0"]
    return {k: np.asarray(v, np.float32) for k, v in w.items()}


def build(weights: dict[str, np.ndarray]):  # -> onnx.ModelProto
    """The stateful causal graph (see the module docstring)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def window(x: str, start: int, end: int | None, axis: int, out: str) -> str:
        """``x[start:end]`` along ``axis`` (negative: from the end; ``None``: to the end)."""
        stop = 2**62 if end is None else end
        return node("Slice", [x, const(f"{out}_s", np.array([start])), const(f"{out}_e", np.array([stop])),
                              const(f"{out}_a", np.array([axis]))], out)

    def tail(x: str, frames: int, axis: int, out: str) -> str:
        """The last ``frames`` entries of ``x`` along ``axis``."""
        return window(x, -frames, None, axis, out)

    def pooled_conv(x: str, key: str, pool: int) -> str:
        """Conv -> ReLU -> BN -> max over ``pool`` frequency positions, as conv -> max -> sign -> ReLU -> affine."""
        scale, shift = weights[f"{key}_scale"], weights[f"{key}_shift"]
        sign = np.where(scale < 0, -1.0, 1.0).astype(np.float32)
        kernel = weights[f"{key}_w"] * sign[:, None, None, None]
        bias = weights[f"{key}_b"] * sign
        conv = node("Conv", [x, const(f"{key}_w", kernel), const(f"{key}_b", bias)], f"{key}_conv")
        peak = node("MaxPool", [conv], f"{key}_max", kernel_shape=[1, pool], strides=[1, pool])
        peak = node("Squeeze", [peak, const(f"{key}_ax", np.array([3]))], f"{key}_sq")
        act = node("Relu", [node("Mul", [peak, const(f"{key}_sign", sign[:, None])], f"{key}_signed")], f"{key}_relu")
        return node("Add", [node("Mul", [act, const(f"{key}_scale", np.abs(scale)[:, None] * sign[:, None])],
                                 f"{key}_scaled"), const(f"{key}_shift", shift[:, None])], key)

    def mid(x: str, key: str) -> str:
        """Conv1d (kernel 7, causal) -> ReLU -> BN over ``[B, C, T]``."""
        conv = node("Conv", [x, const(f"{key}_w", weights[f"{key}_w"]), const(f"{key}_b", weights[f"{key}_b"])],
                    f"{key}_conv")
        act = node("Relu", [conv], f"{key}_relu")
        scaled = node("Mul", [act, const(f"{key}_scale", weights[f"{key}_scale"][:, None])], f"{key}_scaled")
        return node("Add", [scaled, const(f"{key}_shift", weights[f"{key}_shift"][:, None])], key)

    # normalised input, with the state's 127 past frames in front
    x = node("Mul", ["logmel", const("input_scale", weights["input_scale"])], "input_scaled")
    x = node("Add", [x, const("input_shift", weights["input_shift"])], "input_norm")
    full = node("Concat", ["past_input", x], "input_full", axis=1)
    tail(full, STATE_SHAPES["past_input"][0], 1, "next_input")
    img = node("Unsqueeze", [full, const("img_ax", np.array([1]))], "input_img")  # [B, 1, 127 + n, 96]

    # Branch inputs, as slices of the 127 + n frames: every front-end channel of output frame j is musicnn's
    # "same"-padded activation centred at input frame j - 64 (LAG), so all five branches stay aligned as the
    # mid-end was trained on. A kernel of k frames centred at c (musicnn pads k // 2 - 1 before, k // 2 after
    # for even k, 3 and 3 for the 7-frame ones) reads frames c - before .. c + after.
    branches = []
    for key, k, pool in (("f74", 7, N_MELS - 38 + 1), ("f77", 7, N_MELS - 67 + 1),
                         ("s128", 128, N_MELS), ("s64", 64, N_MELS), ("s32", 32, N_MELS)):
        after_centre = k // 2
        end = LAG - after_centre  # frames at the end of the buffer this branch must not read yet
        branches.append(pooled_conv(window(img, 127 - LAG - (k - 1 - after_centre), -end if end else None,
                                           2, f"{key}_in"), key, pool))
    front = node("Concat", branches, "frontend", axis=1)  # [B, 561, n]

    # Mid-end: a causal 7-frame convolution's output at j is musicnn's centred one at j - 3; the residual adds
    # the input at that same centre, j - 3.
    full_fe = node("Concat", ["past_frontend", front], "frontend_full", axis=2)
    tail(full_fe, 6, 2, "next_frontend")
    m1 = mid(full_fe, "m1")
    full_m1 = node("Concat", ["past_mid1", m1], "mid1_full", axis=2)
    tail(full_m1, 6, 2, "next_mid1")
    m2 = node("Add", [mid(full_m1, "m2"), window(full_m1, 3, -3, 2, "mid1_centre")], "mid2")
    full_m2 = node("Concat", ["past_mid2", m2], "mid2_full", axis=2)
    tail(full_m2, 6, 2, "next_mid2")
    m3 = node("Add", [mid(full_m2, "m3"), window(full_m2, 3, -3, 2, "mid2_centre")], "mid3")
    stacked = node("Concat", [front, m1, m2, m3], "channels", axis=1)  # [B, 753, n]
    node("Transpose", [stacked], "frames", perm=[0, 2, 1])

    def value(name: str, shape: list) -> object:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    inputs = [value("logmel", ["batch", "n", N_MELS])]
    inputs += [value(k, ["batch", *s]) for k, s in STATE_SHAPES.items()]
    outputs = [value("frames", ["batch", "n", 753])]
    outputs += [value(k.replace("past_", "next_"), ["batch", *s]) for k, s in STATE_SHAPES.items()]
    graph = helper.make_graph(nodes, "musicnn_msd_stream", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="emotrack musicnn_stream.py")
    model.ir_version = 8
    model.doc_string = ("musicnn MSD_musicnn (Pons & Serra 2019, ISC licence), causal streaming form: "
                        "new log-mel frames + state in, per-frame activations + state out")
    return model


def build_backend(weights: dict[str, np.ndarray]):  # -> onnx.ModelProto
    """musicnn's back end as its own small graph: pooled statistics ``[N, 1506]`` (each channel's max, then its
    mean, interleaved) -> ``penultimate [N, 200]`` and ``taggram [N, 50]``. In ONNX Runtime rather than numpy so
    it runs on the model's threads and provider, not on BLAS helper threads."""
    from onnx import TensorProto, helper, numpy_helper

    names = ("pool_scale", "pool_shift", "dense_w", "dense_b", "pen_scale", "pen_shift", "tags_w", "tags_b")
    inits = [numpy_helper.from_array(weights[k], k) for k in names]
    nodes = [
        helper.make_node("Mul", ["pooled", "pool_scale"], ["pool_scaled"]),
        helper.make_node("Add", ["pool_scaled", "pool_shift"], ["pool_norm"]),
        helper.make_node("Gemm", ["pool_norm", "dense_w", "dense_b"], ["dense"]),
        helper.make_node("Relu", ["dense"], ["hidden"]),
        helper.make_node("Mul", ["hidden", "pen_scale"], ["pen_scaled"]),
        helper.make_node("Add", ["pen_scaled", "pen_shift"], ["penultimate"]),
        helper.make_node("Gemm", ["penultimate", "tags_w", "tags_b"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["taggram"]),
    ]
    graph = helper.make_graph(
        nodes, "musicnn_msd_backend", [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["n", 1506])],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, ["n", w]) for k, w in (("penultimate", 200),
                                                                                     ("taggram", 50))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="emotrack musicnn_stream.py")
    model.ir_version = 8
    return model


def main(source: Path = SOURCE) -> None:
    """Write ``<source stem>_stream.onnx`` and ``<source stem>_backend.onnx`` beside ``source``."""
    import onnx

    weights = source_weights(source)
    target, backend_path = (source.with_name(f"{source.stem}_{part}.onnx") for part in ("stream", "backend"))
    model = build(weights)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    backend = build_backend(weights)
    onnx.checker.check_model(backend)
    onnx.save(backend, str(backend_path))
    print(f"wrote {target} and {backend_path}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE)
