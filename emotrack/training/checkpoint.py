"""Checkpoints: enough to rebuild the model, export it, or resume its training.

A checkpoint is a ``torch.save`` dict with keys ``model`` (zoo name), ``kwargs`` (constructor
arguments), ``state_dict``, ``card`` (the :class:`~emotrack.export.metadata.ModelCard` fields, incl.
front end and normalisation) and optionally ``optimizer``, ``epoch``, ``history`` for resuming.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from emotrack.errors import ModelError
from emotrack.export.metadata import ModelCard
from emotrack.models import build_model
from emotrack.models.common import StreamingModel

__all__ = ["load_checkpoint", "save_checkpoint"]


def save_checkpoint(
    path: str | Path, name: str, kwargs: dict[str, Any], model: StreamingModel, card: ModelCard, **extra: Any
) -> None:
    """Write atomically (temp file + rename) so an interrupted run never leaves a torn checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"model": name, "kwargs": kwargs, "state_dict": model.state_dict(), "card": asdict(card), **extra}, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> tuple[StreamingModel, ModelCard, dict[str, Any]]:
    """Rebuild ``(model in eval mode, card, raw payload)`` from a checkpoint file."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
        model = build_model(payload["model"], **payload["kwargs"])
        model.load_state_dict(payload["state_dict"])
        card = ModelCard(**payload["card"])
    except (KeyError, TypeError, ValueError, RuntimeError, EOFError) as exc:
        raise ModelError(f"{path} is not an emotrack checkpoint ({str(exc).splitlines()[0]})") from None
    return model.eval(), card, payload
