"""Combine checkpoints of one recipe trained with different seeds into one :class:`Ensemble` checkpoint.

``emotrack train --ensemble RUN RUN ...`` calls :func:`combine_checkpoints` per fold (``fold<i>_best.pt``) and
for the final model (``final_best.pt``) instead of training, then scores and exports the result exactly like a
trained model, so the ensemble's CV numbers and its shipped file come from the same path as any other run.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emotrack.errors import ConfigError
from emotrack.export.metadata import ModelCard
from emotrack.frontends import Normalizer
from emotrack.models.ensemble import Ensemble
from emotrack.training.checkpoint import load_checkpoint

__all__ = ["combine_checkpoints", "normalisation_maps"]


def normalisation_maps(target: Normalizer, members: Sequence[Normalizer]) -> tuple[np.ndarray, np.ndarray]:
    """Per member, ``(scale, shift)`` taking frames normalised with ``target`` to frames normalised its own way.

    ``(x * s_t + m_t - m_k) / s_k = x * (s_t / s_k) + (m_t - m_k) / s_k``, exact for every feature.
    """
    mean_t, std_t = np.broadcast_arrays(target.mean, target.std)
    scale = [np.broadcast_to(std_t / n.std, mean_t.shape) for n in members]
    shift = [np.broadcast_to((mean_t - n.mean) / n.std, mean_t.shape) for n in members]
    return np.stack(scale).astype(np.float32), np.stack(shift).astype(np.float32)


def combine_checkpoints(paths: Sequence[str | Path]) -> tuple[Ensemble, ModelCard, list[dict[str, Any]]]:
    """``(ensemble in eval mode, its card, one summary per member)`` from two or more checkpoints.

    The members must read the same front end with the same parameters and have the same outputs; the
    ensemble uses the first member's normalisation (the others get an exact affine map to theirs).
    Raises :class:`~emotrack.errors.ConfigError` naming the checkpoint that does not fit.
    """
    if len(paths) < 2:
        raise ConfigError("--ensemble needs at least two runs")
    loaded = [load_checkpoint(p) for p in paths]
    first_card = loaded[0][1]
    for path, (_, card, payload) in zip(paths, loaded, strict=True):
        if payload["model"] == "ensemble":
            raise ConfigError(f"{path} is already an ensemble; give the single runs")
        if card.frontend != first_card.frontend or card.context_frames != first_card.context_frames:
            raise ConfigError(f"{path} reads {card.frontend['name']} frames with other settings than {paths[0]}")
    target = Normalizer.from_dict(first_card.normalization)
    scale, shift = normalisation_maps(target, [Normalizer.from_dict(c.normalization) for _, c, _ in loaded])
    spec = [{"model": payload["model"], "kwargs": payload["kwargs"]} for _, _, payload in loaded]
    try:
        model = Ensemble(spec, scale.tolist(), shift.tolist())
    except ValueError as exc:
        raise ConfigError(f"cannot combine {', '.join(map(str, paths))}: {exc}") from None
    for member, (single, _, _) in zip(model.members, loaded, strict=True):
        member.load_state_dict(single.state_dict())
    card = copy.deepcopy(first_card)
    members = [{"checkpoint": str(p), "seed": c.training.get("seed", c.training.get("config", {}).get("seed")),
                "best_epoch": c.training.get("best_epoch"),
                **({"command": c.training["command"]} if "command" in c.training else {})}
               for p, (_, c, _) in zip(paths, loaded, strict=True)]
    card.architecture = f"mean of {len(paths)} x {first_card.architecture} (training seeds differ)"
    return model.eval(), card, members
