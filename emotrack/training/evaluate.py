"""Evaluate a model on labelled clips from its causal, streamed predictions.

Predictions are what the runtime would emit: one (valence, arousal) per 0.5 s hop from the newest
20 normalised frames, left zero padding and mask at stream start. For a PyTorch model this is
computed by encode-once + slide (:func:`emotrack.training.trainer.predict_clip`, proven equal to the
full graph on :func:`emotrack.context.unfold` contexts in ``tests/test_training.py``); for an ONNX file
the runtime's own :class:`~emotrack.inference.ModelRunner` is run on ``unfold`` contexts.

Quadrant clips (4Q, EMOPIA) get a clip quadrant from the mean streamed (valence, arousal) over all
hops (:func:`~emotrack.training.metrics.clip_quadrant`, ``"mean"``; majority vote reported too);
continuous clips get RMSE/PCC/CCC per song and global.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from emotrack.context import unfold
from emotrack.frontends import Normalizer
from emotrack.training.metrics import classification_metrics, clip_quadrant, regression_metrics
from emotrack.training.trainer import Example, predict_clip

__all__ = ["evaluate_predictions", "onnx_predictor", "stream_predictions", "torch_predictor"]

Predictor = Callable[[np.ndarray], np.ndarray]
"""Normalised frames ``[n_hops, *frame]`` -> streamed ``va`` ``[n_hops, 2]``."""


def torch_predictor(model: Any) -> Predictor:
    """Streamed predictions of a PyTorch :class:`StreamingModel` (encode once + slide)."""
    return lambda frames: predict_clip(model, frames)


def onnx_predictor(path: str, batch: int = 256) -> tuple[Predictor, Any]:
    """Streamed predictions of an exported model through the runtime's ONNX session; also returns its card."""
    from emotrack.inference import ModelRunner

    runner = ModelRunner(path, provider="cpu", threads=2)

    def predict(frames: np.ndarray) -> np.ndarray:
        ctx, mask = unfold(frames, runner.card.context_frames)
        out = [runner.run(ctx[i : i + batch], mask[i : i + batch])["va"] for i in range(0, len(ctx), batch)]
        return np.concatenate(out) if out else np.zeros((0, 2), np.float32)

    return predict, runner.card


def stream_predictions(predict: Predictor, norm: Normalizer, examples: Sequence[Example]) -> list[np.ndarray]:
    """One ``[n_hops, 2]`` streamed series per clip (frames normalised with the model's statistics)."""
    return [predict(norm(e.frames)) for e in examples]


def evaluate_predictions(examples: Sequence[Example], preds: Sequence[np.ndarray]) -> dict[str, Any]:
    """Metrics for clips and their streamed predictions.

    Returns
    -------
    dict
        ``"quadrant"`` (clip-mean rule: weighted P/R/F1, accuracy, sign accuracies, confusion matrix),
        ``"quadrant_vote"`` (same with per-hop majority vote), ``"clips"`` (id, truth, predicted
        quadrant, mean V/A) for quadrant data; ``"regression"`` for continuous series.
    """
    out: dict[str, Any] = {}
    quad = [(e, p) for e, p in zip(examples, preds, strict=True) if e.quadrant]
    cont = [(e, p) for e, p in zip(examples, preds, strict=True) if not e.quadrant]
    if quad:
        truth = [e.quadrant for e, _ in quad]
        out["quadrant"] = classification_metrics(truth, [clip_quadrant(p, "mean") for _, p in quad])
        out["quadrant_vote"] = classification_metrics(truth, [clip_quadrant(p, "vote") for _, p in quad])
        out["clips"] = [
            {
                "id": e.id,
                "quadrant": e.quadrant,
                "predicted": clip_quadrant(p, "mean"),
                "mean_va": [round(float(x), 4) for x in p.mean(axis=0)],
                "n_hops": len(p),
            }
            for e, p in quad
        ]
    if cont:
        out["regression"] = regression_metrics([p for _, p in cont], [e.targets for e, _ in cont])
    return out
