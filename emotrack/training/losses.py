"""Training losses on the model's ``logits`` (``va = tanh(logits)``).

Two kinds of targets share one output:

* **sign targets** (static quadrant labels, e.g. 4Q/EMOPIA): each axis is a binary "is it positive"
  problem. BCE-with-logits on ``2 * logits`` against ``(sign + 1) / 2`` makes
  ``sigmoid(2 * logits) = (tanh(logits) + 1) / 2`` the probability of a positive sign, so the exported
  ``va = tanh(logits)`` is the *expected sign* in [-1, 1] and its sign is the most likely quadrant.
* **continuous targets** (VGMIDI/DEAM-style V/A in [-1, 1]): MSE on ``tanh(logits)``, optionally plus
  ``1 - CCC`` (Lin), the metric the regression papers report.

Unlabelled entries are NaN and ignored, so a batch may mix both kinds (e.g. valence unknown).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["ccc_loss", "continuous_loss", "music_loss", "sequence_ccc_loss", "sequence_pcc_loss", "sign_loss"]


def sign_loss(logits: torch.Tensor, signs: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """BCE on ``2 * logits`` vs ``(signs + 1) / 2``; ``signs`` in {-1, +1} (NaN = ignore).

    ``smoothing`` pulls the targets towards 0.5 (label smoothing): the clip-level quadrant labels of 4Q
    come from mood tags and are noisy, and hops early in a clip may not yet show the clip's emotion.
    """
    valid = ~torch.isnan(signs)
    if not valid.any():
        return logits.sum() * 0.0
    target = (signs[valid] + 1) / 2
    target = target * (1 - smoothing) + 0.5 * smoothing
    return F.binary_cross_entropy_with_logits(2 * logits[valid], target)


def ccc_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - CCC`` over the batch (population moments), mean over the output columns."""
    losses = []
    for d in range(pred.shape[-1]):
        valid = ~torch.isnan(target[:, d])
        if valid.sum() < 2:
            continue
        p, y = pred[valid, d], target[valid, d]
        cov = ((p - p.mean()) * (y - y.mean())).mean()
        ccc = 2 * cov / (p.var(unbiased=False) + y.var(unbiased=False) + (p.mean() - y.mean()) ** 2 + 1e-8)
        losses.append(1 - ccc)
    return torch.stack(losses).mean() if losses else pred.sum() * 0.0


def continuous_loss(logits: torch.Tensor, target: torch.Tensor, ccc_weight: float = 0.0) -> torch.Tensor:
    """MSE on ``tanh(logits)`` (NaN targets ignored) plus ``ccc_weight * (1 - CCC)``."""
    pred = torch.tanh(logits)
    valid = ~torch.isnan(target)
    if not valid.any():
        return logits.sum() * 0.0
    loss = F.mse_loss(pred[valid], target[valid])
    if ccc_weight:
        loss = loss + ccc_weight * ccc_loss(pred, target)
    return loss


def _ccc(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    cov = ((p - p.mean()) * (y - y.mean())).mean()
    return 2 * cov / (p.var(unbiased=False) + y.var(unbiased=False) + (p.mean() - y.mean()) ** 2 + 1e-8)


def _pcc(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    dp, dy = p - p.mean(), y - y.mean()
    return (dp * dy).mean() / (torch.sqrt(dp.pow(2).mean() + 1e-8) * torch.sqrt(dy.pow(2).mean() + 1e-8))


def _per_sequence(
    score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    pred: torch.Tensor,
    target: torch.Tensor,
    sequence: torch.Tensor,
    min_var: float,
) -> torch.Tensor:
    """Mean ``1 - score`` per sequence and axis, over the pairs whose targets vary (see :func:`sequence_ccc_loss`)."""
    losses = []
    for k in torch.unique(sequence):
        rows = sequence == k
        for d in range(pred.shape[-1]):
            y = target[rows, d]
            valid = ~torch.isnan(y)
            if valid.sum() < 4:
                continue
            y, p = y[valid], pred[rows, d][valid]
            if y.var(unbiased=False) < min_var:
                continue
            losses.append(1 - score(p, y))
    return torch.stack(losses).mean() if losses else pred.sum() * 0.0


def sequence_ccc_loss(
    pred: torch.Tensor, target: torch.Tensor, sequence: torch.Tensor, min_var: float = 1e-3
) -> torch.Tensor:
    """Mean ``1 - CCC`` per sequence and axis (DSAML's per-sequence loss), over the pairs whose targets vary.

    ``sequence`` ``[N]`` says which sequence each row belongs to. A sequence axis counts when it has at
    least 4 labelled rows and target variance ``>= min_var`` (a static clip has nothing to follow).
    """
    return _per_sequence(_ccc, pred, target, sequence, min_var)


def sequence_pcc_loss(
    pred: torch.Tensor, target: torch.Tensor, sequence: torch.Tensor, min_var: float = 1e-3
) -> torch.Tensor:
    """Mean ``1 - PCC`` per sequence and axis, over the same pairs as :func:`sequence_ccc_loss`.

    Pearson's r ignores a sequence's level and scale, so this term asks only that the output move with the
    targets. Within a VGMIDI piece the panel mean moves little (std 0.063, against 0.247 between pieces), and
    in the CCC the level error dominates the movement (``bench/results/within_piece_probe.md``).
    """
    return _per_sequence(_pcc, pred, target, sequence, min_var)


def music_loss(music_logit: torch.Tensor, music: torch.Tensor) -> torch.Tensor:
    """BCE of the music head's logit against 1 (music) / 0 (silence, noise, speech) per row."""
    return F.binary_cross_entropy_with_logits(music_logit, music)
