"""ONNX Runtime session settings shared by every session emotrack runs: the models and the musicnn network.

One place for the thread and provider policy, so a model and the network in its front end behave alike.
"""

from __future__ import annotations

import onnxruntime as ort

__all__ = ["execution_providers", "session_options"]


def session_options(threads: int) -> ort.SessionOptions:
    """Sequential execution on ``threads`` intra-op threads that sleep, not spin, between calls."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if threads > 1:
        # spinning workers burn the core the audio thread needs between 0.5 s hops
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def execution_providers(provider: str) -> list[str]:
    """Providers to ask for: CUDA first when ``provider`` is ``auto`` or ``cuda`` and this ONNX Runtime
    lists it (whether it really loads shows in the session's ``get_providers()``), the CPU always."""
    wanted = ["CPUExecutionProvider"]
    if provider in ("auto", "cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        wanted.insert(0, "CUDAExecutionProvider")
    return wanted
