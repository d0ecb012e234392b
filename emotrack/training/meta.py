"""First-order MAML over per-annotator tasks (DSAML's PDMER, spec models.md §2.5), for MCA models.

Tasks. VGMIDI has no annotator id, but one worker rated two adjacent pieces of one file (same
demographics and tutorial answers: :func:`worker_signatures`), so a task is one worker: support = the
first 30 s (60 hops) of one of their pieces with their own labels, query = the rest of that piece plus
their other piece when it is in the training part. The paper's 15 query *songs* per worker do not exist
here (at most two pieces per worker); its 16 tasks per meta-batch, first-order gradients and Adam outer
step are kept.

What is adapted. The inner loop is exactly the one ``emotrack personalize`` runs at inference:
:func:`emotrack.personal.head.adapt` (numpy gradient steps on the valence/arousal output layer of the
fusion) on the support's fused vectors. The outer loop (first-order: the query gradient at the adapted
weights, applied to the initial ones) updates every weight of the MCA head and projection, so the shared
layers learn fused vectors that one annotated excerpt can steer. The musicnn network is never trained.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from emotrack.personal.head import L2, LR, STEPS, VA_ROWS, Head, adapt
from emotrack.training.trainer import slide_contexts

__all__ = ["AnnotatedPiece", "MetaSettings", "fused_vectors", "meta_train", "worker_signatures"]

SUPPORT_HOPS = 60
"""30 s of support at 0.5 s hops (the paper's, and the protocol's, first 60 frames)."""
_SIGNATURE_KEYS = ("age", "country", "gender", "musicianship", "isKnown", "ex1_arousal", "ex1_valence",
                   "ex1_description", "ex2_arousal", "ex2_valence")


@dataclass
class AnnotatedPiece:
    """One piece: normalised frames, each rater's own series on the hop grid, and who they are."""

    id: str
    frames: np.ndarray
    raters: list[np.ndarray]
    workers: list[str] = field(default_factory=list)
    """A worker key per rater (equal keys on adjacent pieces: the same person)."""
    audio: str | None = None


def worker_signatures(vgmidi_root: str | Path) -> dict[str, list[str]]:
    """Per clip id (``vgmidi/<file>/<piece>``), one worker key per kept rater, in :func:`load_vgmidi` order.

    A worker is matched across the two adjacent pieces of a file by identical demographics and tutorial
    answers; elsewhere the key is unique to the series.
    """
    from emotrack.data.vgmidi import VGMIDI_FILES

    out: dict[str, list[str]] = {}
    for tag, name in enumerate(VGMIDI_FILES, start=1):
        path = Path(vgmidi_root) / name
        if not path.is_file():
            continue
        raw = json.loads(path.read_text())
        by_piece = defaultdict(list)
        for key, ann in raw["annotations"].items():
            m = re.match(r"^(piece\d+)_(\d+)$", key)
            if m:
                by_piece[m[1]].append((int(m[2]), ann))
        sigs = {}
        for pid, anns in by_piece.items():
            if pid not in raw["pieces"]:
                continue
            measures = int(raw["pieces"][pid]["measures"])
            anns = [a for _, a in sorted(anns, key=lambda x: x[0])
                    if min(len(a["valence"]), len(a["arousal"])) >= measures]
            sigs[pid] = [json.dumps([a.get(k) for k in _SIGNATURE_KEYS]) for a in anns]
        for pid, keys in sigs.items():
            n = int(pid.removeprefix("piece"))
            names = []
            for i, key in enumerate(keys):
                # adjacent piece (n - 1 or n + 1) with the same signature, exactly once: the same worker
                pair = [m for m in (n - 1, n + 1) if sigs.get(f"piece{m}", []).count(key) == 1 and keys.count(key) == 1]
                lo = min([n, *pair[:1]])
                names.append(f"{tag}/{lo}/{key}" if pair else f"{tag}/{pid}/{i}")
            out[f"vgmidi/{tag}/{pid}"] = names
    return out


def piece_contexts(model: torch.nn.Module, frames: torch.Tensor, hops: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Embedded contexts ``([T, n, d], [T, n])`` ending at every hop (or at ``hops``) of one piece."""
    emb = model.encode(frames.unsqueeze(0))[0]
    ctx, mask = slide_contexts(emb, model.context_frames)
    return (ctx, mask) if hops is None else (ctx[hops], mask[hops])


def fused_from_contexts(model: torch.nn.Module, ctx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The fusion's per-output vectors ``[B, n_out, H]``: :class:`~emotrack.models.common.MultiScaleALSTM` up to
    its last linear layer (any batch of contexts, so the tasks of a meta-batch share one call)."""
    head = model.head
    x = ctx[..., : model.d] if getattr(model, "pool", None) is not None else ctx
    x = x * mask.unsqueeze(-1)
    contexts = [b(x[:, -w:], mask[:, -w:]) for b, w in zip(head.branches, head.windows, strict=True)]
    c = head.drop(torch.stack(contexts, dim=1))
    beta = torch.softmax(torch.tanh(head.fusion.score(c)), dim=1)
    return torch.einsum("bso,bsh->boh", beta, c)


def fused_vectors(model: torch.nn.Module, frames: torch.Tensor, hops: torch.Tensor | None = None) -> torch.Tensor:
    """Fused vectors ``[T, n_out, H]`` at every hop (or at ``hops``) of one piece of normalised frames ``[T, F]``."""
    return fused_from_contexts(model, *piece_contexts(model, frames, hops))


def base_head(model: torch.nn.Module) -> Head:
    f = model.head.fusion
    return Head(f.heads.detach()[:VA_ROWS].double().numpy().copy(), f.bias.detach()[:VA_ROWS].double().numpy().copy())


def torch_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The inner loop's loss in torch (mean over axes of MSE + 1 - CCC), for the outer gradient."""
    total = pred.new_zeros(())
    for o in range(VA_ROWS):
        p, y = pred[:, o], target[:, o]
        dp, dy = p - p.mean(), y - y.mean()
        ccc = 2 * (dp * dy).mean() / (p.var(unbiased=False) + y.var(unbiased=False) + (p.mean() - y.mean()) ** 2 + 1e-8)
        total = total + ((p - y) ** 2).mean() + 1 - ccc
    return total / VA_ROWS


@dataclass
class MetaSettings:
    """Outer loop (paper: 16 tasks per meta-batch, Adam 5e-5, 2000 episodes) and inner loop (personalize's)."""

    episodes: int = 150
    meta_batch: int = 16
    outer_lr: float = 1e-4
    inner_steps: int = STEPS
    inner_lr: float = LR
    inner_l2: float = L2
    support_hops: int = SUPPORT_HOPS
    query_hops: int = 96
    """Query hops sampled per task and meta-step (of the rest of the piece and the worker's other piece)."""
    seed: int = 0


def _tasks(pieces: Sequence[AnnotatedPiece], support_hops: int) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """(piece index, rater index, [(piece, rater) of the worker's other series]) for every usable series."""
    by_worker = defaultdict(list)
    for p, piece in enumerate(pieces):
        for r, key in enumerate(piece.workers or [f"{piece.id}/{i}" for i in range(len(piece.raters))]):
            by_worker[key].append((p, r))
    tasks = []
    for p, piece in enumerate(pieces):
        if len(piece.frames) < support_hops + 20:
            continue
        for r, key in enumerate(piece.workers or [f"{piece.id}/{i}" for i in range(len(piece.raters))]):
            series = piece.raters[r]
            if series[:support_hops].std(0).max() < 1e-3:  # a flat support says nothing (paper's filter)
                continue
            tasks.append((p, r, [pr for pr in by_worker[key] if pr != (p, r)]))
    return tasks


def meta_train(model: torch.nn.Module, pieces: Sequence[AnnotatedPiece], settings: MetaSettings | None = None,
               progress: bool = False) -> tuple[torch.nn.Module, list[float]]:
    """First-order MAML of ``model`` (an MCA :class:`StreamingModel`, changed in place) over per-worker tasks.

    Returns the model (eval mode) and the mean query loss after adaptation per meta-step.
    """
    s = settings or MetaSettings()
    rng = np.random.default_rng(s.seed)
    torch.manual_seed(s.seed)
    tasks = _tasks(pieces, s.support_hops)
    if not tasks:
        raise ValueError("no meta-training task: pieces need over 40 s and a moving support")
    frames = [torch.from_numpy(np.ascontiguousarray(p.frames, np.float32)) for p in pieces]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=s.outer_lr)
    fusion = model.head.fusion
    history = []
    model.eval()  # no dropout: the inner loop sees what the exported graph computes
    for episode in range(s.episodes):
        opt.zero_grad()
        for prm in params:  # the outer head gets only first-order grads: make every grad a tensor to add to
            prm.grad = torch.zeros_like(prm)
        losses = []
        batch = rng.choice(len(tasks), size=min(s.meta_batch, len(tasks)), replace=False)
        base = base_head(model)
        with torch.no_grad():  # supports of the whole meta-batch in one call
            sup = [piece_contexts(model, frames[tasks[t][0]][: s.support_hops]) for t in batch]
            sup_fused = fused_from_contexts(model, torch.cat([c for c, _ in sup]), torch.cat([m for _, m in sup]))
            sup_fused = sup_fused.double().numpy().reshape(len(batch), s.support_hops, *sup_fused.shape[1:])
        heads, q_ctx, q_mask, q_target, sizes = [], [], [], [], []
        for i, t in enumerate(batch):
            p, r, others = tasks[t]
            adapted, _ = adapt(sup_fused[i], pieces[p].raters[r][: s.support_hops], base, s.inner_steps,
                               s.inner_lr, s.inner_l2)
            heads.append(adapted)
            # query: the rest of this piece, and the worker's other piece(s): a random subset of hops
            parts = [(p, r, s.support_hops)] + [(op, orr, 0) for op, orr in others]
            budget = max(2, s.query_hops // len(parts))
            size = 0
            for qp, qr, start in parts:
                n = min(len(frames[qp]), len(pieces[qp].raters[qr]))
                if n - start < 2:
                    continue
                pick = np.sort(rng.choice(np.arange(start, n), size=min(budget, n - start), replace=False))
                ctx, mask = piece_contexts(model, frames[qp][:n], torch.from_numpy(pick))
                q_ctx.append(ctx)
                q_mask.append(mask)
                q_target.append(torch.from_numpy(pieces[qp].raters[qr][pick]).float())
                size += len(pick)
            sizes.append(size)
        fused = fused_from_contexts(model, torch.cat(q_ctx), torch.cat(q_mask))
        targets = torch.cat(q_target)
        w = torch.tensor(np.stack([h.w for h in heads]), dtype=torch.float32, requires_grad=True)
        b = torch.tensor(np.stack([h.b for h in heads]), dtype=torch.float32, requires_grad=True)
        task_of = torch.repeat_interleave(torch.arange(len(batch)), torch.tensor(sizes))
        pred = torch.tanh((fused[:, :VA_ROWS] * w[task_of]).sum(-1) + b[task_of])
        losses = [torch_loss(pred[task_of == i], targets[task_of == i]) for i in range(len(batch))]
        loss = torch.stack(losses).mean()
        loss.backward()
        with torch.no_grad():  # first order: each adapted head's gradient goes to the initial head
            fusion.heads.grad[:VA_ROWS] += w.grad.sum(0)
            fusion.bias.grad[:VA_ROWS] += b.grad.sum(0)
        losses = [float(x.detach()) for x in losses]
        opt.step()
        history.append(float(np.mean(losses)))
        if progress and (episode % 10 == 0 or episode == s.episodes - 1):
            print(f"meta episode {episode + 1}/{s.episodes}: query loss {history[-1]:.4f}", flush=True)
    return model.eval(), history


def load_annotated_pieces(data_root: str | Path, render_cache: str | Path, cache: str | Path, card,
                          ids: Sequence[str] | None = None, normalize: bool = True) -> list[AnnotatedPiece]:
    """VGMIDI pieces (rendered, front-end frames cached with :class:`FeatureCache`) with each rater's series.

    ``card`` gives the front end and the normalisation; ``ids`` keeps only those clip ids (a fold's training
    part); ``normalize=False`` keeps raw frames.
    """
    from emotrack.data.vgmidi import load_vgmidi
    from emotrack.frontends import Normalizer
    from emotrack.training.features import FeatureCache

    clips = load_vgmidi(data_root, render_cache, progress=False)
    if ids is not None:
        keep = set(ids)
        clips = [c for c in clips if c.id in keep]
    feature_cache = FeatureCache(cache, card.frontend["name"], card.frontend.get("params"))
    feature_cache.build([c.audio_path for c in clips], workers=1, progress=False)
    norm = Normalizer.from_dict(card.normalization) if normalize else (lambda x: x)
    workers = worker_signatures(Path(clips[0].meta["midi_path"]).parent.parent) if clips else {}
    pieces = []
    for c in clips:
        frames = feature_cache.load(c.audio_path)
        n = min(len(frames), len(c.valence))
        raters = [np.stack([v[:n], a[:n]], 1).astype(np.float32) for v, a in c.annotators]
        pieces.append(AnnotatedPiece(c.id, np.asarray(norm(frames[:n]), np.float32), raters, workers.get(c.id, []),
                                     str(c.audio_path)))
    return pieces


def meta_train_main(args) -> dict:
    """``emotrack meta-train``: meta-train a checkpoint's head on VGMIDI annotators and save a checkpoint."""
    from dataclasses import replace

    from emotrack.training.checkpoint import load_checkpoint, save_checkpoint

    torch.set_num_threads(max(1, int(args.threads)))
    model, card, payload = load_checkpoint(args.checkpoint)
    if payload["model"] == "ensemble":
        from emotrack.errors import ConfigError

        raise ConfigError(f"{args.checkpoint} is a seed ensemble; meta-training starts from one trained model "
                          "(a member's final_best.pt)")
    ids = None
    if args.splits is not None:
        fold = json.loads(Path(args.splits).read_text())["folds"][args.fold]
        ids = [i for i in fold["train"] + fold.get("val", []) if i.startswith("vgmidi/")]
    pieces = load_annotated_pieces(args.data_root, args.render_cache or args.cache, args.cache, card, ids)
    settings = MetaSettings(episodes=args.episodes, outer_lr=args.outer_lr, seed=args.seed)
    model, history = meta_train(model, pieces, settings, progress=not args.quiet)
    card = replace(card, name=f"{card.name.removesuffix('-meta')}-meta", training={**card.training, "meta_trained": {
        "what": "first-order MAML over VGMIDI per-worker tasks (emotrack.training.meta)",
        "pieces": len(pieces), **settings.__dict__}})
    save_checkpoint(args.out, payload["model"], payload["kwargs"], model, card)
    return {"out": str(args.out), "pieces": len(pieces), "episodes": settings.episodes,
            "query_loss_first_last10": [float(np.mean(history[:10])), float(np.mean(history[-10:]))]}
