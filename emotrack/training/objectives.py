"""Model-specific parts of the training objective and augmentation for the model zoo.

Why a separate module: the trainer (:mod:`emotrack.training.trainer`) is shared by every zoo model and
was written for MCA (log-mel front end, one ``logits`` output). Two zoo models add an auxiliary loss
from their papers, and one reads raw audio instead of log-mel frames; keeping those differences here
leaves the trainer's MCA path byte-for-byte unchanged and puts each paper-specific term in one place.

* SincNet-C (spec models.md §5.8) has a second head, ``quadrant_logits`` over Q1..Q4, trained with
  cross-entropy against the clip quadrant (weight 0.3), as in the paper's joint V-A + quadrant model.
* DSAML-C (spec §2.3, §2.10) adds the diagonal attention-map loss (weight 1) that keeps its short
  band attending to the current frame and its long band looking back.
* Raw-waveform frames (``"wave"`` front end) need a multiplicative gain and no frequency masking,
  whereas log-mel frames take a gain as an additive log-power offset.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from emotrack.frontends.tonal import N_TONAL
from emotrack.models.dsaml import diagonal_attention_loss

__all__ = [
    "AUX_WEIGHTS", "apply_gain", "auxiliary_loss", "describe", "mel_columns", "model_frontend", "quadrant_ids",
    "uses_freq_mask",
]

AUX_WEIGHTS: dict[str, float] = {"quadrant_logits": 0.3, "attn": 1.0}
"""Weight of each auxiliary term, keyed by the model output that triggers it (spec §5.8 / §2.10)."""


def model_frontend(name: str) -> str:
    """Default front end a zoo model reads (``"logmel"`` or ``"wave"``), from the model class itself.

    Why from the class: the feature cache must match what the exported graph will be fed at run time,
    and the class attribute is the single place that declares it.
    """
    from emotrack.models.registry import MODELS

    return getattr(MODELS[name], "frontend", "logmel")


def apply_gain(frames: torch.Tensor, gain: float, frontend: str) -> torch.Tensor:
    """Random-gain augmentation in the front end's own domain (before normalisation).

    ``gain`` is in natural-log *power* units (the trainer's ``gain_range``). On log-mel frames a gain is
    an additive offset; on raw samples it is a factor ``exp(gain / 2)`` on the amplitude (adding a
    constant to a waveform would be a DC offset, not a level change).
    """
    if frontend == "wave":
        return frames * math.exp(gain / 2.0)
    if frontend in ("smile260", "musicnn", "musicnn_tonal"):  # functionals / embeddings: no simple offset there
        return frames
    if frontend == "logmel_tonal":  # chroma and key clarity are level-free: offset the mel columns only
        return torch.cat([frames[..., :-N_TONAL] + gain, frames[..., -N_TONAL:]], dim=-1)
    return frames + gain


def uses_freq_mask(frontend: str) -> bool:
    """Frequency masking only makes sense on a spectral (mel-band) axis, not on raw samples or functionals."""
    return frontend in ("logmel", "logmel_tonal")


def mel_columns(frontend: str, n_columns: int) -> int:
    """How many leading columns of a frame row are mel bands (the axis frequency masking may cut)."""
    return n_columns - N_TONAL if frontend == "logmel_tonal" else n_columns


def quadrant_ids(signs: torch.Tensor) -> torch.Tensor:
    """(valence sign, arousal sign) rows -> quadrant ids 0..3 (Q1..Q4); -1 where a sign is NaN/unknown."""
    v, a = signs[:, 0], signs[:, 1]
    ids = torch.where(a > 0, torch.where(v > 0, 0, 1), torch.where(v > 0, 3, 2))
    return torch.where(torch.isnan(signs).any(dim=1), -1, ids)


def auxiliary_loss(
    out: dict[str, torch.Tensor], signs: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor | None:
    """Weighted sum of the auxiliary terms the model's outputs call for, or ``None`` if there are none.

    Parameters
    ----------
    out : dict
        :meth:`StreamingModel.temporal` outputs of the sampled training contexts.
    signs : Tensor
        ``[N, 2]`` per-context quadrant sign targets (NaN for continuous-label clips, which have no
        quadrant and so no quadrant term).
    label_smoothing : float
        Applied to the quadrant cross-entropy as to the sign loss (4Q's tag-derived labels are noisy).
    """
    terms: list[torch.Tensor] = []
    if "quadrant_logits" in out:
        target = quadrant_ids(signs)
        keep = target >= 0
        if keep.any():
            ce = F.cross_entropy(out["quadrant_logits"][keep], target[keep], label_smoothing=label_smoothing)
            terms.append(AUX_WEIGHTS["quadrant_logits"] * ce)
    if "attn" in out and "attn_valid" in out:
        terms.append(AUX_WEIGHTS["attn"] * diagonal_attention_loss(out))
    if not terms:
        return None
    return torch.stack(terms).sum()


def describe(model: str) -> dict[str, Any]:
    """Auxiliary objective of ``model`` for the model card's training section (empty if none)."""
    if model == "sincnet":
        return {"auxiliary": f"{AUX_WEIGHTS['quadrant_logits']} x cross-entropy(quadrant_logits, clip quadrant)"}
    if model == "dsaml":
        return {"auxiliary": f"{AUX_WEIGHTS['attn']} x diagonal attention loss (targets 0.9/0.5/0.1)"}
    return {}
