"""Model names -> constructors, so training, export and the CLI agree on what ``mca`` means."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emotrack.models.adff import ADFF
from emotrack.models.common import StreamingModel
from emotrack.models.damff import DAMFF
from emotrack.models.dsaml import DSAML
from emotrack.models.mca import MCA
from emotrack.models.sincnet import SincNet

MODELS: dict[str, Callable[..., StreamingModel]] = {
    "mca": MCA,
    "damff": DAMFF,
    "adff": ADFF,
    "dsaml": DSAML,
    "sincnet": SincNet,
}

ARCHITECTURES: dict[str, str] = {
    "mca": "MCA-C: multi-scale attention LSTM (Ma et al. 2017)",
    "damff": "DAMFF-C: T/F/S conv branches + DAFF dual attention, MCA A-LSTM head (Zhang et al. 2023)",
    "adff": "ADFF-C: chunk-stacked VGG/SE frame encoder, multi-scale causal GRUs + MCA fusion (Huang et al. 2022)",
    "dsaml": "DSAML-C: conv adapter + shared causal transformer over 5/10/20-frame bands (Zhang et al. 2025)",
    "sincnet": "SincNet-C: learnable sinc filterbank on raw 16 kHz audio, MCA A-LSTMs, V-A + quadrant heads",
}
"""One-line description per model, for the ``architecture`` field of a :class:`ModelCard`."""

EXTRA_OUTPUTS: dict[str, dict[str, str]] = {
    "sincnet": {"quadrant_logits": "[batch, 4] logits of quadrants Q1..Q4 (V+A+, V-A+, V-A-, V+A-)"},
}
MUSIC_OUTPUT = {"music": "[batch, 1] probability that the context holds music (not silence, noise or speech)"}
"""The extra output of models trained with a music head (``mca`` with ``music_head``)."""
"""Descriptions of each model's extra ONNX outputs, for ``ModelCard.outputs["extra"]``."""


def build_model(name: str, **kwargs: Any) -> StreamingModel:
    """Instantiate a zoo model by name, or an :class:`~emotrack.models.ensemble.Ensemble` of them (``"ensemble"``:
    made from trained models by ``emotrack train --ensemble``, never trained itself)."""
    if name == "ensemble":
        from emotrack.models.ensemble import Ensemble

        return Ensemble(**kwargs)
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r} (known: {', '.join(MODELS)})") from None
    return cls(**kwargs)
