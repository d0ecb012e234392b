"""PyTorch definitions of emotrack's causal streaming models (needs the ``train`` extra).

Every model maps ``frames [B, T, *frame_shape]`` and ``mask [B, T]`` to ``va [B, 2]`` in [-1, 1]
using only the given context, i.e. only audio before the end of the current hop.
"""

from emotrack.models.registry import MODELS, build_model

__all__ = ["MODELS", "build_model"]
