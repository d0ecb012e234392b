"""The adapted part of a personal model: the MCA fusion's output layer, fitted with numpy.

What is adapted, and why. An MCA model ends in ``logits_o = fused_o . heads_o + bias_o`` (one fused
vector per output, :class:`~emotrack.models.common.MultiScaleFusion`), then ``tanh``. Personalisation
adapts ``heads`` and ``bias`` of the valence and arousal rows (2 x 64 + 2 values; the ``music`` row is
kept). That is the layer where one listener differs from the average (their offset and how strongly each
learned cue moves them), it is what one 30-90 s annotation can pin down without overfitting, and being
linear in the frozen fused vectors it needs no torch: the base graph is run once with the fused vectors
as an extra output, then a few dozen full-batch gradient steps cost milliseconds. The personal file is
the base file with those values replaced (:mod:`emotrack.personal.onnxpatch`), so its graph and per-hop
cost are the base model's. Meta-training (:mod:`emotrack.training.meta`) uses this same inner loop.

A seed ensemble (:class:`~emotrack.models.ensemble.Ensemble`, the default since 0.5.0) outputs the mean of its
members' ``tanh(fused_k . heads_k + bias_k)``: then ``Head`` holds one such layer per member (a leading member
axis on ``w`` and ``b``, and on the fused vectors) and all of them are adapted together on the mean.

Loss per axis, as the trainer's continuous loss: ``MSE(tanh z, y) + (1 - CCC)``, over the labelled hops,
plus ``l2 * |w - w_base|^2`` so a short or odd annotation cannot drag the head far from the base model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emotrack.context import unfold

__all__ = ["BIAS", "HEADS", "Head", "adapt", "head_loss", "predict"]

HEADS = "head.fusion.heads"
BIAS = "head.fusion.bias"
VA_ROWS = 2
"""Rows 0, 1 of the fusion output are valence and arousal; a third (``music``) is left alone."""

STEPS = 32
LR = 0.05
L2 = 0.1
"""Defaults (full-batch gradient steps, step size, pull toward the base head): the best per-annotator CCC on
the held-out pieces of VGMIDI fold 0 (``bench/personalise.py --sweep``), a fold then left out of the reported
rows. More steps or a larger step fit the 30 s support better and the rest of the piece worse."""


@dataclass
class Head:
    """The adaptable values: ``w`` ``[2, H]`` and ``b`` ``[2]`` (valence, arousal rows), or ``[K, 2, H]`` and
    ``[K, 2]`` for the K members of an ensemble."""

    w: np.ndarray
    b: np.ndarray

    def copy(self) -> Head:
        return Head(self.w.copy(), self.b.copy())


def _members(fused: np.ndarray, head: Head) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x [N, K, 2, H], w [K, 2, H], b [K, 2])``: a single head is an ensemble of one."""
    if head.w.ndim == 2:
        return fused[:, None, :VA_ROWS].astype(np.float64), head.w[None], head.b[None]
    return fused[:, :, :VA_ROWS].astype(np.float64), head.w, head.b


def _member_outputs(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``tanh`` of every member's valence/arousal logits, ``[N, K, 2]``."""
    return np.tanh(np.einsum("nkoh,koh->nko", x, w) + b)


def predict(fused: np.ndarray, head: Head) -> np.ndarray:
    """``fused`` ``[N, n_out, H]`` (ensemble: ``[N, K, n_out, H]``) -> ``va`` ``[N, 2]``, as the graph computes it."""
    return _member_outputs(*_members(fused, head)).mean(1)


def _ccc_and_grad(p: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """CCC of one axis (population statistics) and its gradient with respect to ``p``."""
    n = len(p)
    dp, dy = p - p.mean(), y - y.mean()
    cov = float(np.mean(dp * dy))
    gap = float(p.mean() - y.mean())
    denom = float(p.var() + y.var() + gap**2) + 1e-8
    ccc = 2 * cov / denom
    grad = (2.0 / n) * (dy * denom - cov * (2 * dp + 2 * gap)) / denom**2
    return ccc, grad


def head_loss(fused: np.ndarray, targets: np.ndarray, head: Head, base: Head, l2: float = L2
              ) -> tuple[float, Head]:
    """Loss (mean over the two axes) and its gradient; ``fused``/``targets`` only the labelled hops."""
    x, w, b = _members(fused, head)
    members = _member_outputs(x, w, b)  # [N, K, 2]
    p = members.mean(1)
    y = targets.astype(np.float64)
    n = len(p)
    total = 0.0
    gp = np.zeros_like(p)
    for o in range(VA_ROWS):
        ccc, gccc = _ccc_and_grad(p[:, o], y[:, o])
        err = p[:, o] - y[:, o]
        total += float(np.mean(err**2)) + 1.0 - ccc
        gp[:, o] = 2 * err / n - gccc
    total /= VA_ROWS
    gz = gp[:, None] * (1 - members**2) / (members.shape[1] * VA_ROWS)  # d p / d z_k = (1 - tanh^2) / K
    gw = np.einsum("nko,nkoh->koh", gz, x).reshape(head.w.shape) + 2 * l2 * (head.w - base.w)
    gb = gz.sum(0).reshape(head.b.shape)
    total += l2 * float(np.sum((head.w - base.w) ** 2))
    return total, Head(gw, gb)


def adapt(fused: np.ndarray, targets: np.ndarray, base: Head, steps: int = STEPS, lr: float = LR,
          l2: float = L2) -> tuple[Head, list[float]]:
    """Plain gradient descent from ``base`` (the MAML inner loop): the adapted head and the loss per step."""
    head = base.copy()
    history = []
    for _ in range(int(steps)):
        loss, grad = head_loss(fused, targets, head, base, l2)
        history.append(loss)
        head.w -= lr * grad.w
        head.b -= lr * grad.b
    history.append(head_loss(fused, targets, head, base, l2)[0])
    return head, history


def contexts(frames: np.ndarray, n_frames: int, batch: int = 256):
    """Batches of the runtime's contexts over a whole song (``unfold``, left zero padding masked)."""
    ctx, mask = unfold(frames, n_frames)
    for i in range(0, len(ctx), batch):
        yield ctx[i : i + batch], mask[i : i + batch]
