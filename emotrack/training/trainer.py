"""Seeded, resumable training of a :class:`~emotrack.models.common.StreamingModel` on cached frames.

Why encode + slide: a model is a per-frame ``encode`` followed by a causal ``temporal`` head over the
newest ``context_frames`` embeddings. Encoding each clip's frames once and sliding the 20-frame
window over the embeddings (left zero padding + validity mask, exactly like
:func:`emotrack.context.unfold` and the runtime ring) gives the same numbers as running the exported
graph hop by hop, at a fraction of the cost (each frame is encoded once, not 20 times).

Targets per clip are either static signs (4Q quadrant -> (valence, arousal) in {-1, +1}, trained with
:func:`~emotrack.training.losses.sign_loss` on every hop), or, with ``targets="graded"``, the quadrant's
point on the annotated V-A scale (:data:`GRADED_SCALE`, from DEAM's real annotations), or a continuous
``[n_hops, 2]`` series (NaN = unlabelled; :func:`~emotrack.training.losses.continuous_loss`).

Tracking (``medley_p`` > 0): a training sequence may be cut from one clip to another of a different
quadrant, or to generated silence / noise / speech (:mod:`emotrack.data.nonmusic`), with per-hop step
targets, so the model learns to move when the music moves; partners come from the same training part
only. ``sequence_ccc`` adds DSAML's per-sequence ``1 - CCC`` on every sequence whose targets vary,
``sequence_pcc`` a per-sequence ``1 - PCC`` (movement only, level and scale free). A model
with a music head (``music_head``) learns from the same sequences whether each hop's context holds music.

Augmentation (all causal-safe and cheap, in the feature domain):

* gain: a random constant added to a clip's log-mel frames (a gain in dB is an additive log-power
  offset), before normalisation;
* random crop of the clip start, so the warm-up (zero-padded) hops see different music;
* frequency masking (SpecAugment-style, per clip): with probability ``freq_mask_p`` a random run of
  up to ``freq_mask`` mel bands is set to the training mean (0 after normalisation), so no single
  band region (e.g. one instrument's range) can carry the decision;
* left truncation of the context (spec §0.1): with probability ``truncate_p`` a random number of the
  oldest frames of a context are masked out, as at stream start.

Early stopping watches an inner validation split (artist-grouped, never the test fold). A checkpoint
with optimizer and RNG state is written after every epoch, so ``resume=True`` continues a killed run
from its last completed epoch with the same random stream.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from emotrack.export.metadata import ModelCard
from emotrack.frontends import Normalizer
from emotrack.frontends.tonal import N_TONAL
from emotrack.models import build_model
from emotrack.models.common import StreamingModel
from emotrack.training.checkpoint import save_checkpoint
from emotrack.training.losses import continuous_loss, music_loss, sequence_ccc_loss, sequence_pcc_loss, sign_loss
from emotrack.training.metrics import classification_metrics, clip_quadrant, regression_metrics
from emotrack.training.objectives import apply_gain, auxiliary_loss, mel_columns, uses_freq_mask

DEVICES = ("auto", "cpu", "cuda")

__all__ = [
    "Example",
    "GRADED_SCALE",
    "TrainConfig",
    "LOGMEL_MIN_STD",
    "TrainResult",
    "fit_normalizer",
    "predict_clip",
    "quadrant_signs",
    "resolve_device",
    "seed_everything",
    "slide_contexts",
    "train",
    "validation_score",
]


GRADED_SCALE = (0.255, 0.312)
"""|valence|, |arousal| of a quadrant-labelled clip's graded target: the RMS of the 1,802 DEAM songs' mean
dynamic annotations on each axis (``sqrt(mean(song_mean ** 2))``, measured by
:func:`emotrack.data.deam.graded_scale`: 0.254 / 0.312, to within 0.002), so a balanced set of quadrant
targets has the second moment of real songs' annotations, and VGMIDI's continuous labels (per-hop std
0.23 / 0.26) share the scale."""


def quadrant_signs(quadrant: int) -> np.ndarray:
    """Russell quadrant 1..4 -> (valence sign, arousal sign): Q1 (+,+), Q2 (-,+), Q3 (-,-), Q4 (+,-)."""
    return np.array({1: (1, 1), 2: (-1, 1), 3: (-1, -1), 4: (1, -1)}[int(quadrant)], np.float32)


@dataclass
class Example:
    """One clip ready for training: raw (unnormalised) front-end frames plus its labels.

    Attributes
    ----------
    id, group : str
        Clip id and the grouping key for splits (artist, song).
    frames : ndarray
        ``[n_hops, *frame_shape]`` front-end output, not normalised.
    quadrant : int
        1..4 for static quadrant labels, 0 if the clip has a continuous series instead.
    targets : ndarray or None
        ``[n_hops, 2]`` continuous (valence, arousal) per hop, NaN where unlabelled.
    variants : tuple of ndarray
        Frames of label-keeping copies of the clip (pitch-shifted, :attr:`TrainConfig.pitch_shifts`), each the
        shape of ``frames``; training draws one of ``frames`` and these per use, validation and tests see
        ``frames`` only.
    """

    id: str
    group: str
    frames: np.ndarray
    quadrant: int = 0
    targets: np.ndarray | None = None
    music: bool = True
    variants: tuple[np.ndarray, ...] = ()

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """The frames of one version of the clip, uniformly among the original and its variants."""
        if not self.variants:
            return self.frames
        k = int(rng.integers(len(self.variants) + 1))
        return self.frames if k == 0 else self.variants[k - 1]

    def hop_targets(self, graded: bool = False) -> tuple[np.ndarray, bool]:
        """``([n_hops, 2] targets, is_sign)``; ``graded`` turns a quadrant into its :data:`GRADED_SCALE` point."""
        if self.quadrant:
            signs = np.broadcast_to(quadrant_signs(self.quadrant), (len(self.frames), 2))
            return (signs * np.float32(GRADED_SCALE), False) if graded else (signs, True)
        if self.targets is None:
            raise ValueError(f"clip {self.id} has neither a quadrant nor a target series")
        return np.asarray(self.targets, np.float32), False


CUT_SPAN = 12
"""Hops after a medley cut (6 s) from which ``cut_hops`` extra training hops are drawn: where the response is."""


@dataclass
class TrainConfig:
    """Hyperparameters of one run (stored in checkpoints and the model card).

    Defaults are the configuration selected on the inner validation splits of the 4Q CV
    (``bench/accuracy/mca_4q_cv.md``, configurations table): EMA weights, epoch chosen by the 3-epoch
    smoothed validation score, no early stopping (``patience`` None), frequency masking.

    ``hops_per_clip`` subsamples the hops (contexts) used per clip and epoch: neighbouring 10 s
    contexts overlap by 95 % and share a static label, so a random subset per epoch costs a third of
    the time for nearly the same signal.

    ``frontend_params`` overrides the front end's defaults (e.g. ``{"layer": "pooled"}``; a vector front end
    of another width then needs ``model_kwargs["n_features"]``).

    Tracking fields (module docstring): ``targets`` ``"sign"`` or ``"graded"``; ``medley_p`` the chance a
    music clip of a batch becomes a medley with ``medley_cuts`` cuts, ``nonmusic_p`` the chance that a cut
    from music goes to non-music, ``cut_hops`` how many more hops to score among the :data:`CUT_SPAN` after
    each cut; ``nonmusic`` how many generated non-music clips join every training part; ``sequence_ccc``,
    ``sequence_pcc`` and ``music_weight`` the weights of the per-sequence CCC and PCC and music-head terms.
    Continuous series (VGMIDI) are few but carry the within-piece dynamics: ``series_repeat`` puts each in
    every epoch that many times and ``hops_per_series`` samples more of their hops, so the per-sequence terms
    see their curve. ``pitch_shifts`` (semitones, e.g. ``[-2, -1, 1, 2]``) gives every recorded-audio clip
    (4Q; rendered MIDI is left as it is) copies shifted by those amounts, drawn in place of the clip (medley
    parts too), so an epoch has as many sequences as without them.
    """

    model: str = "mca"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    frontend_params: dict[str, Any] = field(default_factory=dict)
    epochs: int = 40
    batch_clips: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-2
    grad_clip: float = 1.0
    patience: int | None = None
    seed: int = 0
    hops_per_clip: int | None = 8
    label_smoothing: float = 0.1
    gain_range: float = 1.4  # +-6 dB in natural-log power units
    crop_max_frames: int = 20
    truncate_p: float = 0.1
    ccc_weight: float = 0.5
    val_stride: int = 2
    ema: float = 0.98
    smooth: int = 3
    freq_mask: int = 12
    freq_mask_p: float = 0.5
    targets: str = "sign"
    medley_p: float = 0.0
    medley_cuts: int = 1
    cut_hops: int = 0
    nonmusic_p: float = 0.3
    nonmusic: int = 0
    sequence_ccc: float = 0.0
    sequence_pcc: float = 0.0
    music_weight: float = 0.5
    series_repeat: int = 1
    hops_per_series: int | None = None
    pitch_shifts: list[int] = field(default_factory=list)
    device: str = "auto"


@dataclass
class TrainResult:
    model: StreamingModel
    card: ModelCard
    history: list[dict[str, Any]]
    best_epoch: int
    seconds: float


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch (CPU and CUDA) and return the numpy generator the trainer draws augmentation from."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when PyTorch sees a GPU, else CPU; ``"cuda"`` without a GPU is an error."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r} (choose from {', '.join(DEVICES)})")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but this PyTorch build sees no GPU")
    return torch.device(device)


LOGMEL_MIN_STD = 0.5
"""Floor on a mel band's training std, in natural-log power units (about 2 dB).

Why: MIDI rendered with a small soundfont (VGMIDI, EMOPIA) leaves the top bands at the log floor in
nearly every frame (std ~0.002), so plain z-scoring scaled the rare note there by ~500x, which drove the
BatchNorm models (DSAML, ADFF, DAMFF) to a constant output on EMOPIA. Real recordings (4Q) have every
band's std above 2, so the floor leaves them unchanged.
"""


def fit_normalizer(examples: Sequence[Example], frontend: str = "logmel") -> Normalizer:
    """Training-set statistics: per mel band (log-mel, std floored at :data:`LOGMEL_MIN_STD`; also per
    tonal column for ``logmel_tonal``), per feature (Smile-260, z-normalised as in the MCA paper; musicnn
    embeddings, with their tonal statistics for ``musicnn_tonal``) or one scalar (raw waveform)."""
    frames = np.concatenate([e.frames for e in examples])
    if frontend in ("smile260", "musicnn"):
        return Normalizer.fit(frames, axes=(0,))
    if frontend == "musicnn_tonal":  # chroma and clarity statistics get the same tiny floor as logmel_tonal's
        floors = np.full(frames.shape[-1], 1e-5)
        floors[-2 * N_TONAL :] = 1e-3
        return Normalizer.fit(frames, axes=(0,), min_std=floors)
    if frontend == "logmel":
        return Normalizer.fit(frames, axes=(0, 1), min_std=LOGMEL_MIN_STD)
    if frontend == "logmel_tonal":  # the floor is in log-mel units; chroma and clarities get a tiny one
        floors = np.full(frames.shape[-1], 1e-3)
        floors[:-N_TONAL] = LOGMEL_MIN_STD
        return Normalizer.fit(frames, axes=(0, 1), min_std=floors)
    return Normalizer.fit(frames, axes=(0, 1))


def slide_contexts(emb: torch.Tensor, n_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Contexts ending at every hop of one clip: ``[T, D]`` -> ``([T, n, D], [T, n])``.

    Same left zero padding and mask as :func:`emotrack.context.unfold`; models zero masked
    embeddings, so this equals encoding zero-padded frame contexts.
    """
    t = emb.shape[0]
    padded = torch.cat([emb.new_zeros(n_frames - 1, *emb.shape[1:]), emb])
    valid = torch.cat([emb.new_zeros(n_frames - 1), emb.new_ones(t)])
    idx = torch.arange(t, device=emb.device)[:, None] + torch.arange(n_frames, device=emb.device)[None, :]
    return padded[idx], valid[idx]


@torch.no_grad()
def predict_clip(model: StreamingModel, frames: np.ndarray, batch: int = 512, stride: int = 1) -> np.ndarray:
    """Streamed ``va`` ``[n_hops, 2]`` of one clip from *normalised* frames (encode once + slide).

    ``stride`` > 1 returns only every ``stride``-th hop (cheap early-stopping checks; not for metrics).
    Runs on the device the model's parameters are on.
    """
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(frames, np.float32)).to(next(model.parameters()).device)
    emb = model.encode(x.unsqueeze(0))[0]
    ctx, mask = slide_contexts(emb, model.context_frames)
    ctx, mask = ctx[stride - 1 :: stride], mask[stride - 1 :: stride]
    out = [
        torch.tanh(model.temporal(ctx[i : i + batch], mask[i : i + batch])["logits"])
        for i in range(0, len(ctx), batch)
    ]
    return torch.cat(out).cpu().numpy() if out else np.zeros((0, 2), np.float32)


def validation_score(
    model: StreamingModel, examples: Sequence[Example], norm: Normalizer, stride: int = 1
) -> dict[str, float]:
    """Early-stopping score on the inner validation clips (higher is better).

    Quadrant clips: clip-level weighted F1 of the streamed mean (see
    :func:`~emotrack.training.metrics.clip_quadrant`) plus a small bonus for the mean hop-level
    correct-sign margin, which breaks F1 ties on ~100 clips smoothly. Continuous clips: mean per-song
    CCC over valence and arousal (on every ``stride``-th hop).
    """
    preds = [predict_clip(model, norm(e.frames), stride=stride) for e in examples]
    quad = [(e, p) for e, p in zip(examples, preds, strict=True) if e.quadrant]
    cont = [(e, p) for e, p in zip(examples, preds, strict=True) if not e.quadrant]
    out: dict[str, float] = {}
    scores = []
    if quad:
        m = classification_metrics([e.quadrant for e, _ in quad], [clip_quadrant(p) for _, p in quad])
        margin = float(np.mean([np.mean(p * quadrant_signs(e.quadrant)) for e, p in quad]))
        out.update(val_f1=m["weighted_f1"], val_acc=m["accuracy"], val_margin=margin)
        scores.append(m["weighted_f1"] + 0.1 * margin)
    if cont:
        labels = [e.targets[stride - 1 :: stride] for e, _ in cont]
        r = regression_metrics([p for _, p in cont], labels)["per_song"]
        out.update(val_ccc=(r["valence_ccc"] + r["arousal_ccc"]) / 2)
        scores.append(out["val_ccc"])
    out["score"] = float(np.mean(scores))
    return out


class MedleyPool:
    """The training part's examples by kind, for drawing medley partners (never from outside the part)."""

    def __init__(self, examples: Sequence[Example]) -> None:
        self.nonmusic = [e for e in examples if not e.music]
        self.music = [e for e in examples if e.music]
        self.by_quadrant = {q: [e for e in self.music if e.quadrant != q] for q in (1, 2, 3, 4)}

    def partner(self, e: Example, rng: np.random.Generator, nonmusic_p: float) -> Example | None:
        """Non-music (chance ``nonmusic_p``), else music of another quadrant (any other clip for series and
        after non-music)."""
        if self.nonmusic and e.music and rng.random() < nonmusic_p:
            return self.nonmusic[int(rng.integers(len(self.nonmusic)))]
        music = self.by_quadrant[e.quadrant] if e.quadrant else self.music
        pick = music[int(rng.integers(len(music)))] if music else None
        return None if pick is e else pick


def _segment(e: Example, start: int, stop: int, graded: bool, frames: np.ndarray | None = None,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(frames, sign targets, continuous targets, music targets)`` of hops ``start:stop`` (NaN = none);
    ``frames`` is the version of ``e`` drawn (default: the original)."""
    targets, is_sign = e.hop_targets(graded)
    t = np.array(targets[start:stop], np.float32)
    nan = np.full_like(t, np.nan)
    music = np.full(len(t), 1.0 if e.music else 0.0, np.float32)
    return (e.frames if frames is None else frames)[start:stop], (t if is_sign else nan), (nan if is_sign else t), music


def _sequence(
    e: Example, pool: MedleyPool | None, cfg: TrainConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """One training sequence from ``e``: its (randomly cropped) hops, or a medley cut to partners; with the
    hops where each new part starts (empty for a plain clip).

    A medley keeps ``e`` for at least 5 s, then cuts ``medley_cuts`` times, each time to at least 10 s of a
    partner (random start) of another quadrant than the segment before it; with one cut to non-music, that
    part comes first half of the time (music starting after silence or talk).
    """
    graded = cfg.targets == "graded"
    crop = int(rng.integers(0, min(cfg.crop_max_frames, max(len(e.frames) - 1, 0)) + 1))
    medley = pool is not None and cfg.medley_p and rng.random() < cfg.medley_p
    partner = pool.partner(e, rng, cfg.nonmusic_p) if medley else None
    if partner is None or len(e.frames) - crop < 10 or len(partner.frames) < 20:
        return (*_segment(e, crop, len(e.frames), graded, e.draw(rng)), [])
    first_len = int(rng.integers(10, len(e.frames) - crop + 1))
    second_len = int(rng.integers(20, min(len(partner.frames), 60) + 1))
    second_start = int(rng.integers(0, len(partner.frames) - second_len + 1))
    parts = [_segment(e, crop, crop + first_len, graded, e.draw(rng)),
             _segment(partner, second_start, second_start + second_len, graded, partner.draw(rng))]
    previous = partner
    for _ in range(cfg.medley_cuts - 1):
        follow = pool.partner(previous, rng, cfg.nonmusic_p)
        if follow is None or len(follow.frames) < 20:
            break
        length = int(rng.integers(20, min(len(follow.frames), 60) + 1))
        start = int(rng.integers(0, len(follow.frames) - length + 1))
        parts.append(_segment(follow, start, start + length, graded, follow.draw(rng)))
        previous = follow
    if len(parts) == 2 and not partner.music and rng.random() < 0.5:
        parts.reverse()
    cuts = np.cumsum([len(p[0]) for p in parts])[:-1].tolist()
    return (*(np.concatenate(x) for x in zip(*parts, strict=True)), cuts)  # type: ignore[return-value]


def _batch_loss(
    model: StreamingModel,
    batch: Sequence[Example],
    mean: torch.Tensor,
    std: torch.Tensor,
    cfg: TrainConfig,
    rng: np.random.Generator,
    pool: MedleyPool | None = None,
) -> torch.Tensor:
    """Build each sequence (medleys from ``pool``), augment, encode once, slide contexts, score sampled hops."""
    dev = mean.device
    clips, sign_t, cont_t, music_t, cut_at = [], [], [], [], []
    for e in batch:
        if e.music:
            frames_np, s, c, m, cuts = _sequence(e, pool, cfg, rng)
        else:
            (frames_np, s, c, m), cuts = _segment(e, 0, len(e.frames), True), []
        frames = torch.from_numpy(np.ascontiguousarray(frames_np)).to(dev)
        frames = apply_gain(frames, float(rng.uniform(-cfg.gain_range, cfg.gain_range)), model.frontend)
        frames = (frames - mean) / std
        if cfg.freq_mask and uses_freq_mask(model.frontend) and rng.random() < cfg.freq_mask_p:
            width = int(rng.integers(1, cfg.freq_mask + 1))
            lo = int(rng.integers(0, mel_columns(model.frontend, frames.shape[-1]) - width + 1))
            frames[..., lo : lo + width] = 0.0
        clips.append(frames)
        cut_at.append(cuts)
        sign_t.append(torch.from_numpy(s).to(dev))
        cont_t.append(torch.from_numpy(c).to(dev))
        music_t.append(torch.from_numpy(m).to(dev))
    lengths = [len(c) for c in clips]
    emb = model.encode(torch.cat(clips).unsqueeze(0))[0]
    ctxs, masks, signs, conts, musics, seq_ids = [], [], [], [], [], []
    for k, (emb_clip, n) in enumerate(zip(torch.split(emb, lengths), lengths, strict=True)):
        ctx, mask = slide_contexts(emb_clip, model.context_frames)
        pick = np.arange(n)
        hops = cfg.hops_per_series if batch[k].targets is not None and batch[k].music and cfg.hops_per_series \
            else cfg.hops_per_clip
        if hops and n > hops:
            pick = np.sort(rng.choice(n, hops, replace=False))
            if cfg.cut_hops and cut_at[k]:  # more of the hops right after each cut, where the output must move
                spans = [np.arange(c, min(c + CUT_SPAN, n)) for c in cut_at[k]]
                near = [rng.choice(span, min(cfg.cut_hops, len(span)), replace=False) for span in spans]
                pick = np.union1d(pick, np.concatenate(near))
        pick_t = torch.from_numpy(pick).to(dev)
        ctxs.append(ctx[pick_t])
        masks.append(mask[pick_t])
        signs.append(sign_t[k][pick_t])
        conts.append(cont_t[k][pick_t])
        musics.append(music_t[k][pick_t])
        seq_ids.append(torch.full((len(pick),), k, device=dev))
    ctx, mask = torch.cat(ctxs), torch.cat(masks).clone()
    # Left truncation (spec §0.1): hide a random number (1..n-1) of the oldest frames.
    n_ctx = mask.shape[1]
    drop = rng.random(len(mask)) < cfg.truncate_p
    cut = rng.integers(1, n_ctx, len(mask))
    cols = torch.arange(n_ctx, device=dev)[None, :]
    hide = torch.from_numpy(drop).to(dev)[:, None] & (cols < torch.from_numpy(cut).to(dev)[:, None])
    mask = torch.where(hide, 0.0, mask)
    out = model.temporal(ctx, mask)
    logits = out["logits"]
    signs_all, conts_all = torch.cat(signs), torch.cat(conts)
    loss = logits.sum() * 0.0
    if not torch.isnan(signs_all).all():
        loss = loss + sign_loss(logits, signs_all, cfg.label_smoothing)
    if not torch.isnan(conts_all).all():
        loss = loss + continuous_loss(logits, conts_all, cfg.ccc_weight)
        if cfg.sequence_ccc:
            loss = loss + cfg.sequence_ccc * sequence_ccc_loss(torch.tanh(logits), conts_all, torch.cat(seq_ids))
        if cfg.sequence_pcc:
            loss = loss + cfg.sequence_pcc * sequence_pcc_loss(torch.tanh(logits), conts_all, torch.cat(seq_ids))
    if "music_logit" in out and cfg.music_weight:
        loss = loss + cfg.music_weight * music_loss(out["music_logit"][:, 0], torch.cat(musics))
    aux = auxiliary_loss(out, signs_all, cfg.label_smoothing)  # zoo-specific terms; None for MCA
    if aux is not None:
        loss = loss + aux
    return loss


def train(
    train_set: Sequence[Example],
    val_set: Sequence[Example],
    cfg: TrainConfig,
    card: ModelCard,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> TrainResult:
    """Train with AdamW and early stopping on ``val_set``; return the best-validation model (on the CPU).

    Training runs on ``cfg.device`` (``"auto"``: the GPU when PyTorch sees one). Resuming restores the
    CPU random state exactly; on a GPU, dropout draws from the CUDA generator, which is reseeded, not
    restored, so a resumed GPU run is statistically but not bitwise the same.

    Parameters
    ----------
    train_set, val_set : sequences of :class:`Example`
        Disjoint by group (artist); ``val_set`` only drives early stopping.
    cfg : TrainConfig
    card : ModelCard
        Template card (name, front end, ...); the fitted normalisation is filled in.
    checkpoint : path, optional
        Written after every epoch (model, optimizer, RNG state, history, best weights).
    resume : bool
        Continue from ``checkpoint`` if it exists (must come from the same config and data).
    stop_after : int, optional
        Stop this call after that many epochs (time-sliced runs; continue later with ``resume``).
    """
    t0 = time.perf_counter()
    rng = seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    model = build_model(cfg.model, **cfg.model_kwargs).to(device)
    norm = fit_normalizer(train_set, model.frontend)
    card = copy.deepcopy(card)
    card.normalization = norm.to_dict()
    mean, std = torch.from_numpy(norm.mean).to(device), torch.from_numpy(norm.std).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1), eta_min=cfg.lr * 0.05)
    history: list[dict[str, Any]] = []
    best = {"score": -np.inf, "epoch": -1, "state": copy.deepcopy(model.state_dict())}
    averaged = copy.deepcopy(model) if cfg.ema else model
    pool = MedleyPool(train_set) if cfg.medley_p else None
    series = [i for i, e in enumerate(train_set) if e.music and e.targets is not None and not e.quadrant]
    epoch_items = np.array(list(range(len(train_set))) + series * (max(1, cfg.series_repeat) - 1), np.int64)
    start = 0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        payload = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(payload["state_dict"])
        opt.load_state_dict(payload["optimizer"])
        sched.load_state_dict(payload["scheduler"])
        history = payload["history"]
        best = payload["best"]
        rng.bit_generator.state = payload["numpy_rng"]
        torch.set_rng_state(payload["torch_rng"].cpu())
        if cfg.ema:
            averaged.load_state_dict(payload["ema_state"])
        start = payload["epoch"] + 1
    stop = cfg.epochs if stop_after is None else min(cfg.epochs, start + stop_after)
    for epoch in range(start, stop):
        if cfg.patience is not None and best["epoch"] >= 0 and epoch - best["epoch"] > cfg.patience:
            break
        model.train()
        order = rng.permutation(epoch_items)  # fresh each epoch: depends only on the saved RNG state
        losses = []
        batches = [order[i : i + cfg.batch_clips] for i in range(0, len(order), cfg.batch_clips)]
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False, disable=not progress)
        for idx in bar:
            loss = _batch_loss(model, [train_set[i] for i in idx], mean, std, cfg, rng, pool)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if cfg.ema:
                with torch.no_grad():
                    for pa, p in zip(averaged.parameters(), model.parameters(), strict=True):
                        pa.lerp_(p, 1.0 - cfg.ema)
                    # Buffers (BatchNorm running statistics) are not averaged: copy the live ones, or the
                    # averaged copy of a BN model (DAMFF, ADFF, SincNet) would keep its initial statistics.
                    for ba, b in zip(averaged.buffers(), model.buffers(), strict=True):
                        ba.copy_(b)
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses):.4f}")
        sched.step()
        if val_set:
            val = validation_score(averaged, val_set, norm, cfg.val_stride)
        else:
            val = {"score": -float(np.mean(losses))}
        row = {"epoch": epoch, "loss": float(np.mean(losses)), **val}
        history.append(row)
        smoothed = float(np.mean([h["score"] for h in history[-max(1, cfg.smooth) :]]))
        row["smoothed_score"] = smoothed
        if smoothed > best["score"]:
            best = {"score": smoothed, "epoch": epoch, "state": copy.deepcopy(averaged.state_dict())}
        if progress:
            tqdm.write(
                f"epoch {epoch + 1}: loss {row['loss']:.4f} "
                + " ".join(f"{k} {v:.3f}" for k, v in val.items())
                + (" *" if best["epoch"] == epoch else "")
            )
        if checkpoint is not None:
            save_checkpoint(
                checkpoint, cfg.model, cfg.model_kwargs, model, card,
                optimizer=opt.state_dict(), scheduler=sched.state_dict(), epoch=epoch, history=history,
                best=best, numpy_rng=rng.bit_generator.state, torch_rng=torch.get_rng_state(), config=asdict(cfg),
                ema_state=averaged.state_dict() if cfg.ema else None,
            )
    model.load_state_dict(best["state"])
    model.cpu().eval()
    return TrainResult(model, card, history, int(best["epoch"]), time.perf_counter() - t0)
