"""Several trained models of one recipe run as one: the mean of their outputs.

Members differ only in their training seed (weights, batch order, inner holdout), so each one's errors are
partly its own and averaging them gives steadier, better-ranked values at the cost of one more temporal head
per member per hop. They share the front end; each keeps the feature statistics it was trained with, folded
into a per-feature affine map from the ensemble's (the first member's) normalisation to its own, so the runtime
feeds the ensemble exactly like a single model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from emotrack.models.common import StreamingModel

__all__ = ["Ensemble"]

_VA_LIMIT = 1.0 - 1e-6
"""|mean va| is clipped below 1 before ``atanh``, so the returned logits stay finite."""


class Ensemble(StreamingModel):
    """``members`` (``{"model": name, "kwargs": {...}}`` each) averaged in output space.

    ``temporal`` returns the members' mean ``va``, its ``atanh`` as ``logits`` (so ``tanh(logits)``, what the
    trainer's scoring applies, is that mean) and the mean of each extra output (``music``, a probability);
    ``forward`` (the exported graph) returns the mean ``va`` directly.
    ``scale``/``shift`` (one row per member, shaped like a frame's statistics) map frames normalised with
    the ensemble's statistics to the member's own; identity when omitted.
    """

    def __init__(self, members: list[dict[str, Any]], scale: list | None = None, shift: list | None = None) -> None:
        super().__init__()
        from emotrack.models.registry import build_model

        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        self.spec = [{"model": m["model"], "kwargs": dict(m["kwargs"])} for m in members]
        self.members = nn.ModuleList(build_model(m["model"], **m["kwargs"]) for m in self.spec)
        first = self.members[0]
        for m in self.members[1:]:
            if (m.frontend, m.extra_outputs) != (first.frontend, first.extra_outputs):
                raise ValueError("ensemble members must read the same front end and have the same outputs")
        self.frontend = first.frontend
        self.extra_outputs = first.extra_outputs
        self.context_frames = max(m.context_frames for m in self.members)
        n = len(self.members)
        identity = (torch.ones(n, 1), torch.zeros(n, 1))
        self.register_buffer("scale", identity[0] if scale is None else torch.tensor(scale, dtype=torch.float32))
        self.register_buffer("shift", identity[1] if shift is None else torch.tensor(shift, dtype=torch.float32))
        self._dims: list[int] = []

    def init_kwargs(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this ensemble (what a checkpoint stores)."""
        return {"members": self.spec, "scale": self.scale.tolist(), "shift": self.shift.tolist()}

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        embs = [m.encode(frames * self.scale[k] + self.shift[k]) for k, m in enumerate(self.members)]
        self._dims = [e.shape[-1] for e in embs]
        return torch.cat(embs, dim=-1)

    def temporal(self, emb: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self._dims:  # temporal before any encode (not a path the trainer or exporter takes)
            raise RuntimeError("Ensemble.temporal needs the embedding widths: call encode first")
        parts = torch.split(emb, self._dims, dim=-1)
        outs = [m.temporal(p[:, -m.context_frames :], mask[:, -m.context_frames :])
                for m, p in zip(self.members, parts, strict=True)]
        va = torch.stack([torch.tanh(o["logits"]) for o in outs]).mean(0)
        clipped = va.clamp(-_VA_LIMIT, _VA_LIMIT)
        result = {"va": va, "logits": 0.5 * torch.log((1 + clipped) / (1 - clipped))}  # atanh, in ONNX's ops
        for name in self.extra_outputs:
            result[name] = torch.stack([o[name] for o in outs]).mean(0)
        return result

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        out = self.outputs(frames, mask)  # the mean va itself: no atanh/tanh round trip in the exported graph
        return (out["va"], *(out[name] for name in self.extra_outputs)) if self.extra_outputs else out["va"]
