"""emotrack: streaming, real-time music emotion (valence/arousal) tracking.

The runtime path (capture -> front end -> ONNX Runtime -> smoothing -> OSC/WebSocket) imports no torch;
PyTorch model definitions, training and export live behind the ``train`` extra.
"""

__version__ = "0.1.0"

HOP_SECONDS = 0.5
"""One prediction per 0.5 s of audio, as in the MCA paper."""
