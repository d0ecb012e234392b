"""What ``emotrack train`` and ``emotrack evaluate`` run: data -> features -> CV / final model -> files.

Both take the ``argparse.Namespace`` that :func:`emotrack.cli.build_parser` produces, so the parser is the
single place that defines options and their defaults (build one in code with
``build_parser().parse_args(["train", "mca", ...])``).

Data sets (``--datasets``, any combination; multi-task when several):

* ``4q``: audio clips, static quadrant -> (valence, arousal) *sign* targets on every hop; grouped by artist.
* ``vgmidi``: MIDI rendered into the render cache, per-measure V/A -> *continuous* targets per hop;
  grouped by piece.
* ``emopia``: MIDI rendered into the render cache, static quadrant -> sign targets; grouped by song, with
  the official song-level split: its *train* songs train, its *val* songs are only ever evaluated.

Losses (:mod:`emotrack.training.losses`): sign targets -> BCE on ``2 * logits`` (``tanh(logits)`` is the
expected sign); continuous targets -> MSE + ``ccc_weight`` x (1 - CCC). One batch mixes both kinds.

Splits (``--folds k``): 4Q and VGMIDI clips go through one artist/piece-grouped stratified k-fold
(:func:`~emotrack.data.splits.grouped_kfold`); EMOPIA's train songs join every fold's training part and its
val songs are every fold's EMOPIA test set (metrics per fold, reported as the fold mean). With EMOPIA alone
the CV is its official split, one "fold". Early stopping watches a grouped stratified holdout of ~1/7 of
each training part (:func:`_inner_split`), never test or EMOPIA-val clips. The final model trains on
everything except EMOPIA val. ``<out>/splits.json`` lists the clip ids of every part, for audit.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotrack.data.clips import Clip, DataError
from emotrack.errors import ConfigError
from emotrack.export.metadata import ModelCard
from emotrack.frontends import Normalizer
from emotrack.models.registry import EXTRA_OUTPUTS, MUSIC_OUTPUT
from emotrack.training.checkpoint import save_checkpoint
from emotrack.training.cv_report import cv_markdown
from emotrack.training.evaluate import evaluate_predictions, stream_predictions, torch_predictor
from emotrack.training.features import FeatureCache
from emotrack.training.objectives import describe as describe_objective
from emotrack.training.objectives import model_frontend
from emotrack.training.trainer import Example, TrainConfig, TrainResult, train

__all__ = [
    "TRAINABLE",
    "cv_splits",
    "evaluate_main",
    "final_split",
    "load_clips",
    "load_examples",
    "run_cv",
    "train_main",
]

TRAINABLE = ("4q", "vgmidi", "emopia")
"""Data sets ``train``/``evaluate`` accept (the ones with audio or renderable MIDI here)."""
MIDI_DATASETS = ("vgmidi", "emopia")
QUADRANT_DATASETS = ("4q", "emopia")
EMOPIA_SPLITS = ("train", "val", "all")

CARD_METRIC_KEYS = (
    "weighted_f1", "accuracy", "precision", "recall", "arousal_sign_accuracy", "valence_sign_accuracy",
)
REGRESSION_KEYS = tuple(f"{d}_{m}" for d in ("valence", "arousal") for m in ("ccc", "pcc", "rmse"))
FRONTEND_TEXT = {
    "logmel": "log-mel frames",
    "logmel_tonal": "log-mel frames with chroma and major/minor key clarity",
    "wave": "raw 16 kHz audio",
    "smile260": "openSMILE ComParE LLD + delta mean/std (Smile-260) frames",
    "musicnn": "pretrained musicnn (Million Song Dataset tagger) embeddings, streamed (newest 2.9 s of final frames)",
    "musicnn_tonal": "pretrained musicnn (Million Song Dataset tagger) embeddings of the newest 2.9 s and 1 s, "
                     "streamed, with the hop's chroma and major/minor key clarity",
}
DATA_TEXT = {
    "4q": "4Q audio clips (Panda et al. 2018)",
    "vgmidi": "VGMIDI video-game piano pieces rendered from MIDI (Ferreira & Whitehead 2019)",
    "emopia": "EMOPIA pop-piano clips rendered from MIDI, official train split (Hung et al. 2021)",
}
GROUP_TEXT = {"4q": "artist", "vgmidi": "piece", "emopia": "song"}


def architecture_text(model: str, kwargs: dict[str, Any]) -> str:
    """Human-readable architecture line for the model card."""
    if model != "mca":
        from emotrack.models.registry import ARCHITECTURES

        return ARCHITECTURES.get(model, model)
    import inspect

    from emotrack.models.mca import MCA

    p = {k: v.default for k, v in inspect.signature(MCA.__init__).parameters.items() if k != "self"}
    p.update(kwargs)
    frame = {
        "musicnn": "each 0.5 s hop's streamed musicnn embedding of its newest 2.9 s of final frames (200 values)",
        "musicnn_tonal": "each 0.5 s hop's streamed musicnn embeddings of its newest 2.9 s and 1.0 s of final frames "
                         "(2 x 200 values) and the mean/std of its 25 rows of chroma and key clarity (28 values)",
        "smile260": "each 0.5 s hop's Smile-260 functionals (260 values)",
    }.get(p.get("frontend") or "logmel")
    if frame is None:
        tonal = " (+ mean/std of its chroma and key-clarity columns)" if p.get("frontend") == "logmel_tonal" else ""
        frame = ("each 0.5 s log-mel patch [25x64] -> in-graph per-band mean/std/|delta|/max/min, onset envelope, "
                 f"sub-band spectral contrast and loudness-envelope statistics{tonal}")
    return (
        f"MCA-C (Ma et al., ACM MM 2017; causal joint V/A variant): {frame} "
        f"-> linear+LayerNorm+GELU (d={p['d']}); three {p['layers']}-layer attention-LSTMs "
        f"(hidden {p['hidden']}) over the newest 5/10/20 frames (2.5/5/10 s); per-output multi-scale attention "
        "fusion; va = tanh(logits)"
    )


def _log(opts: argparse.Namespace, text: str) -> None:
    """Progress line on stderr (stdout carries the JSON summary)."""
    if not opts.quiet:
        print(text, file=sys.stderr, flush=True)


# -- data ------------------------------------------------------------------------------------------


def _check_datasets(datasets: Sequence[str] | None) -> list[str]:
    """Deduplicated data set names, or a one-line :class:`DataError` for an unknown one."""
    names = list(dict.fromkeys(datasets or []))
    unknown = [n for n in names if n not in TRAINABLE]
    if unknown or not names:
        what = f"unknown data set {unknown[0]!r}" if unknown else "no data set given"
        raise DataError(f"{what}; train and evaluate take {', '.join(TRAINABLE)} (any combination)")
    return names


def _strata_keys(clips: Sequence[Clip]) -> list[str]:
    """Balancing key per clip: quadrant, mean-arousal quartile (continuous), EMOPIA quadrant x split.

    EMOPIA's split comes second so that, taking strata in sorted order, even a tiny limit gets val clips.
    """
    from emotrack.data.splits import strata

    return [f"{k}/{c.meta.get('split')}" if c.dataset == "emopia" else str(k)
            for c, k in zip(clips, strata(clips), strict=True)]


def _limit(clips: Sequence[Clip], limit: int | None, seed: int) -> list[Clip]:
    """At most ``limit`` clips of *one* data set, balanced over its strata, seeded, in the original order.

    Why balanced: quick runs and CI still see every quadrant (4Q), every arousal level (VGMIDI) and both
    EMOPIA splits. Strata take turns until ``limit`` clips are picked.
    """
    if not limit or limit >= len(clips):
        return list(clips)
    rng = np.random.default_rng(seed)
    by_key: dict[str, list[int]] = {}
    for i, key in enumerate(_strata_keys(clips)):
        by_key.setdefault(key, []).append(i)
    per = -(-limit // len(by_key))
    drawn = [[members[i] for i in rng.choice(len(members), min(per, len(members)), replace=False)]
             for members in (by_key[k] for k in sorted(by_key))]
    picked: list[int] = []
    for rank in range(per):
        picked += [d[rank] for d in drawn if rank < len(d)]
    return [clips[i] for i in sorted(picked[:limit])]


def load_clips(
    data_root: str | Path,
    datasets: Sequence[str],
    render_cache: str | Path | None = None,
    *,
    limit: int | None = None,
    seed: int = 0,
    emopia_split: str = "all",
    soundfont: str | Path | None = None,
    workers: int = 2,
    progress: bool = False,
) -> list[Clip]:
    """Clips with audio for the named data sets: each limited (per data set) *before* MIDI is rendered.

    ``emopia_split`` keeps only EMOPIA's official ``"train"`` or ``"val"`` songs (``"all"``: clips of both).
    MIDI sets need ``render_cache``; renders already there are reused.
    """
    from emotrack.data.cache import load_dataset
    from emotrack.data.render import render_clips

    names = _check_datasets(datasets)
    if not Path(data_root).expanduser().is_dir():
        raise DataError(f"data root not found: {data_root}")
    clips: list[Clip] = []
    for name in names:
        part = load_dataset(name, data_root)
        if name == "emopia":
            keep = ("train", "val") if emopia_split == "all" else (emopia_split,)
            part = [c for c in part if c.meta.get("split") in keep]
        part = _limit(part, limit, seed)
        if name in MIDI_DATASETS:
            if render_cache is None:
                raise DataError(f"{name} is MIDI: give a render cache folder (--render-cache)")
            part = render_clips(part, render_cache, soundfont, workers=max(1, workers), progress=progress)
        clips += [c for c in part if c.audio_path is not None]
    if not clips:
        raise DataError(f"no clips with audio in {', '.join(names)} under {data_root}")
    return clips


def load_examples(
    clips: Sequence[Any],
    cache_root: str | Path,
    workers: int = 2,
    progress: bool = True,
    frontend: str = "logmel",
    frontend_params: dict[str, Any] | None = None,
) -> tuple[list[Example], FeatureCache]:
    """Cache the front-end frames of ``clips`` and wrap them as :class:`Example` (same order).

    Quadrant clips get sign targets (``quadrant``); clips with a V/A series get continuous ``targets``,
    NaN past the labelled part (rendered MIDI runs a few seconds past its last bar).
    """
    cache = FeatureCache(cache_root, frontend, frontend_params)
    cache.build([c.audio_path for c in clips], workers=workers, progress=progress)
    examples = []
    for c in clips:
        frames = cache.load(c.audio_path)
        targets = None
        if c.valence is not None:
            targets = np.full((len(frames), 2), np.nan, np.float32)
            n = min(len(frames), len(c.valence))
            targets[:n, 0], targets[:n, 1] = c.valence[:n], c.arousal[:n]
        examples.append(Example(c.id, c.group, frames, int(c.quadrant or 0), targets))
    return examples, cache


def nonmusic_examples(
    n: int,
    cache_root: str | Path,
    frontend: str,
    frontend_params: dict[str, Any] | None = None,
    seed: int = 0,
    workers: int = 2,
    progress: bool = True,
) -> list[Example]:
    """``n`` generated non-music clips (:func:`emotrack.data.nonmusic.make_nonmusic`) as training examples.

    Their targets are the neutral centre (0, 0) on every hop and ``music=False``; they join every training
    part (they belong to no data set, so no split can leak them) and are never validated or tested on.
    """
    from emotrack.data.nonmusic import make_nonmusic

    if n <= 0:
        return []
    made = make_nonmusic(Path(cache_root) / "nonmusic", n, seed=seed)
    cache = FeatureCache(cache_root, frontend, frontend_params)
    cache.build([p for p, _ in made], workers=workers, progress=progress)
    out = []
    for path, _ in made:
        frames = cache.load(path)
        out.append(Example(f"nonmusic/{path.stem}", "nonmusic", frames, 0, np.zeros((len(frames), 2), np.float32),
                           music=False))
    return out


def _render_cache(opts: argparse.Namespace) -> Path:
    """``--render-cache``, defaulting to ``--cache`` (where ``emotrack data prepare`` renders too)."""
    return Path(opts.render_cache or opts.cache)


# -- splits ----------------------------------------------------------------------------------------


def _inner_split(clips: Sequence[Clip], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Grouped, stratified ~1/7 holdout of training clips for early stopping (never test data).

    Tiny subsets (CI) hold out a larger share (down to 1/2), so every stratum can still appear in both parts.
    """
    from emotrack.data.splits import grouped_kfold, strata

    n_groups = len({c.group for c in clips})
    if n_groups < 2:
        raise DataError(f"{len(clips)} training clip(s) from {n_groups} artist/piece/song: too few for a "
                        "validation holdout (raise --limit)")
    counts = np.unique(strata(clips), return_counts=True)[1]
    return grouped_kfold(clips, k=int(min(np.clip(counts.min(), 2, 7), n_groups)), seed=seed)[0]


def _emopia_parts(clips: Sequence[Clip]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of (k-fold clips: 4Q/VGMIDI, EMOPIA train, EMOPIA val)."""
    split = np.array([c.meta.get("split") if c.dataset == "emopia" else "kfold" for c in clips], dtype=object)
    return np.flatnonzero(split == "kfold"), np.flatnonzero(split == "train"), np.flatnonzero(split == "val")


def _check_disjoint(clips: Sequence[Clip], parts: dict[str, np.ndarray]) -> None:
    """Every pair of parts is group-disjoint, and no EMOPIA val clip is in a training part."""
    from emotrack.data.splits import assert_group_disjoint

    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert_group_disjoint(clips, parts[a], parts[b])
    for part in ("train", "val"):
        if any(clips[j].dataset == "emopia" and clips[j].meta.get("split") == "val" for j in parts.get(part, [])):
            raise AssertionError(f"an EMOPIA val clip reached the {part} part")


def cv_splits(clips: Sequence[Clip], folds: int, seed: int = 0, inner_seed: int | None = None) -> list[dict]:
    """Cross-validation plan: per fold ``{"train", "val", "test"}`` index arrays into ``clips``.

    4Q/VGMIDI: ``folds``-fold artist/piece-grouped stratified CV (``seed``); EMOPIA train songs are added
    to every fold's training part, EMOPIA val songs to every fold's test part. EMOPIA alone: one fold,
    official train -> val. ``val`` is the early-stopping holdout of the training part (``inner_seed``).
    """
    from emotrack.data.splits import grouped_kfold

    kfold, em_train, em_val = _emopia_parts(clips)
    if len(kfold):
        try:
            outer = [(kfold[tr], kfold[te]) for tr, te in grouped_kfold([clips[i] for i in kfold], folds, seed)]
        except ValueError as exc:
            raise DataError(f"cannot make {folds} grouped folds: {exc} (lower --folds or raise --limit)") from None
    else:
        outer = [(np.array([], int), np.array([], int))]
    plan = []
    for tr, te in outer:
        dev = np.concatenate([tr, em_train]).astype(int)
        inner_tr, inner_va = _inner_split([clips[j] for j in dev], seed if inner_seed is None else inner_seed)
        fold = {"train": np.sort(dev[inner_tr]), "val": np.sort(dev[inner_va]),
                "test": np.sort(np.concatenate([te, em_val]).astype(int))}
        _check_disjoint(clips, fold)
        plan.append(fold)
    return plan


def final_split(clips: Sequence[Clip], seed: int = 0) -> dict[str, np.ndarray]:
    """The final model's ``{"train", "val", "excluded"}``: every clip but EMOPIA val, with an inner holdout."""
    kfold, em_train, em_val = _emopia_parts(clips)
    dev = np.sort(np.concatenate([kfold, em_train]).astype(int))
    tr, va = _inner_split([clips[j] for j in dev], seed)
    parts = {"train": dev[tr], "val": dev[va], "excluded": em_val}
    _check_disjoint(clips, {"train": parts["train"], "val": parts["val"]})
    return parts


def _write_splits(path: Path, clips: Sequence[Clip], plan: list[dict] | None, final: dict | None) -> None:
    """Clip ids of every part (audit trail: reviewers can check group disjointness from the file)."""
    ids = lambda idx: [clips[j].id for j in idx]  # noqa: E731
    doc: dict[str, Any] = {}
    if plan is not None:
        doc["folds"] = [{k: ids(v) for k, v in f.items()} for f in plan]
    if final is not None:
        doc["final"] = {k: ids(v) for k, v in final.items()}
    path.write_text(json.dumps(doc, indent=0))


def _count(clips: Sequence[Clip], idx: Sequence[int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for j in idx:
        out[clips[j].dataset] = out.get(clips[j].dataset, 0) + 1
    return out


# -- training --------------------------------------------------------------------------------------


def _config(opts: argparse.Namespace) -> TrainConfig:
    """TrainConfig from the options; ``--hparams`` JSON overrides any field (bad JSON -> ConfigError)."""
    from emotrack.models.registry import MODELS
    from emotrack.training.trainer import resolve_device

    if opts.model not in MODELS:
        raise ConfigError(f"unknown model {opts.model!r} (known: {', '.join(MODELS)})")
    cfg = TrainConfig(model=opts.model, epochs=int(opts.epochs), seed=int(opts.seed), device=opts.device)
    try:
        extra = json.loads(opts.hparams) if isinstance(opts.hparams, str) else dict(opts.hparams or {})
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--hparams is not valid JSON: {exc}") from None
    if not isinstance(extra, dict):
        raise ConfigError("--hparams must be a JSON object, e.g. '{\"lr\": 1e-3}'")
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(extra) - known
    if unknown:
        raise ConfigError(f"unknown hyperparameters {sorted(unknown)} (known: {sorted(known)})")
    for k, v in extra.items():
        setattr(cfg, k, v)
    if getattr(opts, "frontend", None):
        cls = MODELS[opts.model]
        if opts.frontend not in (cls.frontends or (cls.frontend,)):
            raise ConfigError(f"{opts.model} cannot read {opts.frontend!r} frames "
                              f"(it reads: {', '.join(cls.frontends or (cls.frontend,))})")
        cfg.model_kwargs = {**cfg.model_kwargs, "frontend": opts.frontend}
    try:
        resolve_device(cfg.device)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return cfg


def _description(datasets: Sequence[str], frontend: str, cfg: TrainConfig | None = None) -> str:
    """Model-card description that says what the outputs mean given the training targets."""
    text = (
        "Causal streaming music emotion model: every 0.5 s it reads the newest 10 s of "
        f"{FRONTEND_TEXT.get(frontend, frontend)} and outputs (valence, arousal) in [-1, 1]. "
    )
    signs = [n for n in datasets if n in QUADRANT_DATASETS]
    names = {"4q": "4Q", "emopia": "EMOPIA", "vgmidi": "VGMIDI"}
    if cfg is not None and cfg.targets == "graded":
        from emotrack.training.trainer import GRADED_SCALE

        parts = []
        if signs:
            parts.append(f"static {' and '.join(names[n] for n in signs)} quadrants as graded targets (+-"
                         f"{GRADED_SCALE[0]} valence, +-{GRADED_SCALE[1]} arousal, the RMS of DEAM songs' annotations)")
        if "vgmidi" in datasets:
            parts.append("VGMIDI's continuous per-measure labels")
        sources = " and ".join(parts)
        extra = music = ""
        if cfg.medley_p:
            extra = (" Trained on medleys (cuts between clips of different quadrants and to generated silence, "
                     "noise and speech) with per-hop step targets, so it follows changes within a stream.")
        if cfg.model_kwargs.get("music_head"):
            music = (" Its extra output 'music' is the probability that the context holds music; the runtime "
                     "turns it into each hop's confidence and active flag.")
        return text + f"Values are graded on the scale people annotate: trained on {sources}.{extra}{music}"
    if signs and "vgmidi" not in datasets:
        return text + (
            f"Trained on static {' and '.join(names[n] for n in signs)} quadrant labels, so va is the expected sign "
            "of valence/arousal (its quadrant is the predicted Russell quadrant); magnitudes are confidence, "
            "not graded intensity."
        )
    if not signs:
        return text + (
            "Trained on VGMIDI's continuous per-measure valence/arousal (rendered piano), so va is a graded "
            "estimate on that annotation scale."
        )
    return text + (
        f"Trained multi-task: continuous VGMIDI valence/arousal (rendered piano) and static "
        f"{' and '.join(names[n] for n in signs)} quadrant labels as sign targets, so va is graded on "
        "VGMIDI-like input and tends to the expected sign (its quadrant the predicted quadrant) elsewhere."
    )


def _card_template(
    opts: argparse.Namespace, cache: FeatureCache, cfg: TrainConfig, datasets: Sequence[str]
) -> ModelCard:
    return ModelCard(
        name=opts.model,
        version="0.1.0",
        frontend={"name": cache.frontend_name, "params": cache.frontend_params},
        architecture=architecture_text(opts.model, cfg.model_kwargs),
        description=_description(datasets, cache.frontend_name, cfg),
        training={"config": asdict(cfg), **describe_objective(opts.model)},
        outputs={"va": ["valence", "arousal"], "range": [-1.0, 1.0],
                 "extra": {**EXTRA_OUTPUTS.get(opts.model, {}),
                           **(MUSIC_OUTPUT if cfg.model_kwargs.get("music_head") else {})}},
    )


def _training_text(opts: argparse.Namespace, clips: Sequence[Clip], idx: np.ndarray, cfg: TrainConfig) -> dict:
    """``data``, ``targets`` and ``model_selection`` of the final card: what the model was really trained on."""
    used = _count(clips, idx)
    names = [n for n in _check_datasets(opts.datasets) if n in used]
    if names == ["4q"] and not opts.limit:
        data = f"4Q development set ({len(clips)} clips, {Path(opts.data_root) / '4q'})"
    else:
        data = "; ".join(f"{DATA_TEXT[n]}: {used[n]} clips" for n in names)
    signs = [n for n in names if n in QUADRANT_DATASETS]
    targets, scores = [], []
    if signs and cfg.targets == "graded":
        from emotrack.training.trainer import GRADED_SCALE

        targets.append(f"{', '.join(signs)}: static quadrant -> graded point (+-{GRADED_SCALE[0]} valence, "
                       f"+-{GRADED_SCALE[1]} arousal: RMS of the 1,802 DEAM songs' mean annotations) on every hop; "
                       f"MSE + {cfg.ccc_weight} x (1 - CCC) on va = tanh(logits)")
        scores.append("clip weighted F1 (+ 0.1 x mean sign margin) on quadrant clips")
    elif signs:
        targets.append(f"{', '.join(signs)}: static quadrant -> (valence sign, arousal sign) on every hop; BCE on "
                       f"2*logits vs (sign+1)/2 with label smoothing {cfg.label_smoothing}, so va = tanh(logits) is "
                       "the expected sign")
        scores.append("clip weighted F1 (+ 0.1 x mean sign margin) on quadrant clips")
    if "vgmidi" in names:
        targets.append("vgmidi: mean-annotator (valence, arousal) per 0.5 s hop (per-measure labels, constant bar "
                       f"length); MSE + {cfg.ccc_weight} x (1 - CCC) on va = tanh(logits)")
        scores.append("mean per-piece CCC of V and A on VGMIDI")
    if cfg.medley_p:
        targets.append(f"medleys: with chance {cfg.medley_p} a sequence cuts from its clip to one of another quadrant "
                       f"of the same training part or (share {cfg.nonmusic_p}) to one of {cfg.nonmusic} generated "
                       "non-music clips (silence, noise, hum, espeak-ng speech; target (0, 0)), per-hop step targets"
                       + (f"; per-sequence {cfg.sequence_ccc} x (1 - CCC)" if cfg.sequence_ccc else "")
                       + (f"; per-sequence {cfg.sequence_pcc} x (1 - PCC)" if cfg.sequence_pcc else ""))
    if cfg.model_kwargs.get("music_head"):
        targets.append(f"music head: {cfg.music_weight} x BCE(music logit, 1 for music hops, 0 for non-music hops)")
    selection = (f"best {cfg.smooth}-epoch-smoothed score on a grouped stratified 1/7 holdout "
                 f"({', '.join(f'{n} by {GROUP_TEXT[n]}' for n in names)}): {' and '.join(scores)}"
                 + (", averaged" if len(scores) > 1 else ""))
    return {"data": data, "targets": "; ".join(targets), "model_selection": selection}


def _by_dataset(clips: Sequence[Clip], test_idx: np.ndarray, test: list[Example], preds: list[np.ndarray]) -> dict:
    """One fold's test examples and predictions split by data set: metrics are never pooled across sets."""
    out = {}
    for name in dict.fromkeys(clips[j].dataset for j in test_idx):
        sel = [k for k, j in enumerate(test_idx) if clips[j].dataset == name]
        out[name] = ([test[k] for k in sel], [preds[k] for k in sel])
    return out


def _quadrant_keys(m: dict[str, Any]) -> dict[str, Any]:
    """The quadrant metrics a CV file keeps (those of the model card, plus the confusion matrix)."""
    return {k: m[k] for k in (*CARD_METRIC_KEYS, "confusion_matrix")}


def _quadrant_result(folds: list[tuple[int, list[Example], list[np.ndarray]]]) -> dict[str, Any]:
    """Fold rows, fold mean/std and pooled metrics of a quadrant data set (4Q, EMOPIA)."""
    rows, clips_out = [], []
    for i, ex, pr in folds:
        m = evaluate_predictions(ex, pr)
        rows.append({"fold": i, "n_test": len(ex), **_quadrant_keys(m["quadrant"]),
                     "vote_weighted_f1": m["quadrant_vote"]["weighted_f1"]})
        clips_out += [{**c, "fold": i} for c in m["clips"]]
    pooled = evaluate_predictions([e for _, ex, _ in folds for e in ex], [p for _, _, pr in folds for p in pr])
    return {
        "kind": "quadrant",
        "mean": {k: float(np.mean([r[k] for r in rows])) for k in (*CARD_METRIC_KEYS, "vote_weighted_f1")},
        "std": {k: float(np.std([r[k] for r in rows])) for k in CARD_METRIC_KEYS},
        "pooled": _quadrant_keys(pooled["quadrant"]),
        "pooled_vote": {k: pooled["quadrant_vote"][k] for k in CARD_METRIC_KEYS},
        "per_fold": rows,
        "clips": clips_out,
    }


def _regression_result(folds: list[tuple[int, list[Example], list[np.ndarray]]]) -> dict[str, Any]:
    """Fold rows, fold mean/std and pooled (every test piece once) per-song/global RMSE/PCC/CCC."""
    from emotrack.training.metrics import regression_metrics

    rows = [{"fold": i, "n_test": len(ex), **regression_metrics(pr, [e.targets for e in ex])} for i, ex, pr in folds]
    pooled = regression_metrics([p for _, _, pr in folds for p in pr], [e.targets for _, ex, _ in folds for e in ex])
    stat = lambda fn: {s: {k: float(fn([r[s][k] for r in rows])) for k in REGRESSION_KEYS}  # noqa: E731
                       for s in ("per_song", "global")}
    return {"kind": "regression", "pooled": pooled, "mean": stat(np.mean), "std": stat(np.std), "per_fold": rows}


def _protocol(name: str, k: int, only_emopia: bool) -> str:
    if name == "emopia":
        models = "the model" if only_emopia else f"each of the {k} fold models"
        return (f"official song-level split: train songs in every training part, val songs evaluated by {models}; "
                "mean/std over fold models, pooled = all fold models' predictions together")
    return f"{k}-fold {GROUP_TEXT[name]}-grouped stratified CV; pooled = every clip once, from its test fold"


def _fit(
    opts: argparse.Namespace, tag: str, train_part: list[Example], val_part: list[Example], cfg: TrainConfig,
    card: ModelCard, out: Path,
) -> tuple[TrainResult, list[dict[str, Any]]]:
    """Train ``tag`` (``fold<i>`` or ``final``), or with ``--ensemble`` combine the runs' ``<tag>_best.pt``.

    Returns the result and, for an ensemble, one summary per member (empty for a trained model).
    """
    if not getattr(opts, "ensemble", None):
        result = train(train_part, val_part, cfg, card, checkpoint=out / f"{tag}.pt", resume=bool(opts.resume),
                       progress=not opts.quiet)
        return result, []
    from emotrack.training.ensemble import combine_checkpoints

    paths = []
    for run in map(Path, opts.ensemble):
        if run.is_dir():
            paths.append(run / f"{tag}_best.pt")
        elif tag == "final":
            paths.append(run)
        else:
            raise ConfigError(f"--ensemble {run}: a checkpoint file can only be a final model's (use --folds 0)")
    model, member_card, members = combine_checkpoints(paths)
    merged = copy.deepcopy(card)
    merged.normalization, merged.architecture = member_card.normalization, member_card.architecture
    merged.training = {**merged.training, **_ensemble_text(members)}
    return TrainResult(model, merged, history=[], best_epoch=-1, seconds=0.0), members


def _ensemble_text(members: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``training`` entries of an ensemble's card (fold and final alike)."""
    return {"ensemble": f"mean of the outputs of {len(members)} models trained by this recipe with different "
                        "seeds (hparams seed)", "members": members}


def _save(path: Path, cfg: TrainConfig, result: TrainResult, members: list, card: ModelCard | None = None) -> None:
    """``save_checkpoint`` of a trained model or of an ensemble (saved as zoo model ``ensemble``)."""
    name, kwargs = ("ensemble", result.model.init_kwargs()) if members else (cfg.model, cfg.model_kwargs)
    save_checkpoint(path, name, kwargs, result.model, card or result.card)


def _check_ensemble_splits(opts: argparse.Namespace, out: Path) -> None:
    """Every ``--ensemble`` run was split like this one (same outer test parts and held-out clips)."""
    mine = json.loads((out / "splits.json").read_text())
    for run in opts.ensemble:
        if not Path(run).is_dir():
            continue  # a final checkpoint file (the --folds 0 form): its card records its own command
        try:
            theirs = json.loads((Path(run) / "splits.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--ensemble {run}: cannot read its splits.json ({exc})") from None
        same_folds = "folds" not in mine or [f["test"] for f in mine["folds"]] == [
            f["test"] for f in theirs.get("folds", [])]
        same_final = "final" not in mine or mine["final"]["excluded"] == theirs.get("final", {}).get("excluded")
        if not (same_folds and same_final):
            raise ConfigError(f"--ensemble {run} was split differently (other --seed, --datasets or --limit)")


def run_cv(
    clips: Sequence[Clip],
    examples: Sequence[Example],
    opts: argparse.Namespace,
    cfg: TrainConfig,
    card: ModelCard,
    out: Path,
    plan: list[dict] | None = None,
    extra_train: Sequence[Example] = (),
) -> dict[str, Any]:
    """Grouped CV (see :func:`cv_splits`); each fold early-stops on its inner holdout; metrics per data set.

    ``extra_train`` (generated non-music examples) joins every fold's training part.

    Returns the CV document: per data set results under ``"datasets"``; when 4Q is trained, its numbers
    also sit at the top level (``mean``, ``std``, ``pooled``, ``pooled_vote``, quadrant keys in
    ``per_fold``), the layout ``bench/accuracy/report.py`` reads.
    """
    plan = plan if plan is not None else cv_splits(clips, int(opts.folds), int(opts.seed), cfg.seed)
    names = list(dict.fromkeys(c.dataset for c in clips))
    per_fold: list[dict[str, Any]] = []
    by_ds: dict[str, list] = {n: [] for n in names}
    t0 = time.perf_counter()
    for i, part in enumerate(plan):
        tr, va, te = part["train"], part["val"], part["test"]
        _log(opts, f"fold {i + 1}/{len(plan)}: train {len(tr)}, val {len(va)}, test {len(te)}")
        result, members = _fit(opts, f"fold{i}", [examples[j] for j in tr] + list(extra_train),
                               [examples[j] for j in va], cfg, card, out)
        # The fold's selected weights as a plain checkpoint, for later streamed checks (bench/response.py).
        _save(out / f"fold{i}_best.pt", cfg, result, members)
        test = [examples[j] for j in te]
        preds = stream_predictions(torch_predictor(result.model), Normalizer.from_dict(result.card.normalization), test)
        row: dict[str, Any] = {
            "fold": i, "n_train": len(tr), "n_val": len(va), "n_test": len(te),
            "n_train_by_dataset": _count(clips, tr), "n_test_by_dataset": _count(clips, te),
            "best_epoch": result.best_epoch + 1, "epochs_run": len(result.history),
            "train_seconds": round(result.seconds, 1),
        }
        if members:
            row["members"] = members
        for name, (ex, pr) in _by_dataset(clips, te, test, preds).items():
            by_ds[name].append((i, ex, pr))
        if by_ds.get("4q") and by_ds["4q"][-1][0] == i:
            m = evaluate_predictions(by_ds["4q"][-1][1], by_ds["4q"][-1][2])
            row.update(_quadrant_keys(m["quadrant"]), vote_weighted_f1=m["quadrant_vote"]["weighted_f1"])
        row["history"] = result.history
        per_fold.append(row)
        _log(opts, f"fold {i + 1}: " + ", ".join(_headline_text(n, by_ds[n][-1]) for n in names
                                                  if by_ds[n] and by_ds[n][-1][0] == i))
    only_emopia = names == ["emopia"]
    results = {}
    for name in names:
        if by_ds[name]:
            summarise = _quadrant_result if name in QUADRANT_DATASETS else _regression_result
            results[name] = summarise(by_ds[name])
            results[name]["protocol"] = _protocol(name, len(plan), only_emopia)
    clips_out = [c | {"dataset": n} for n, r in results.items() if r["kind"] == "quadrant" for c in r.pop("clips")]
    k = len(plan)
    legacy_4q = names == ["4q"]
    cv: dict[str, Any] = {
        "folds": k,
        "grouping": "artist" if legacy_4q else ", ".join(f"{n}: {GROUP_TEXT[n]}" for n in names),
        "split": (f"StratifiedGroupKFold(n_splits={k}, shuffle=True, random_state={opts.seed}) by artist" if legacy_4q
                  else "; ".join(f"{n}: {results[n]['protocol']}" for n in results)),
        "inner_validation": f"{'an artist-grouped' if legacy_4q else 'a grouped'} stratified holdout of 1/7 of each "
        "training fold (epoch/config selection only)",
        "clip_rule": "quadrant of the mean streamed (valence, arousal) over all hops of the clip",
        "datasets": results,
    }
    if "4q" in results:
        cv.update({key: results["4q"][key] for key in ("mean", "std", "pooled", "pooled_vote")})
    cv.update(per_fold=per_fold, clips=clips_out, total_train_seconds=round(time.perf_counter() - t0, 1))
    return cv


def _headline_text(name: str, fold: tuple[int, list[Example], list[np.ndarray]]) -> str:
    """One-line fold result for the progress log."""
    _, ex, pr = fold
    m = evaluate_predictions(ex, pr)
    if "quadrant" in m:
        return f"{name} weighted F1 {m['quadrant']['weighted_f1']:.3f}, acc {m['quadrant']['accuracy']:.3f}"
    g = m["regression"]["global"]
    return f"{name} global CCC V {g['valence_ccc']:.3f} A {g['arousal_ccc']:.3f}"


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    out = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def _command(opts: argparse.Namespace) -> str:
    """The command line to record (``command_line`` set by the CLI, else this process's argv)."""
    return getattr(opts, "command_line", None) or " ".join(shlex.quote(a) for a in ["emotrack", *sys.argv[1:]])


def _card_metrics(cv: dict[str, Any]) -> dict[str, Any]:
    """Card metrics: ``4q_cv`` (fold means), ``vgmidi_cv`` (pooled global + per-piece), ``emopia_val``."""
    datasets = cv.get("datasets") or {"4q": cv}  # CV files written before multi-data-set training
    out: dict[str, Any] = {}
    if "4q" in datasets:
        r = datasets["4q"]
        out["4q_cv"] = {"folds": cv["folds"], "grouping": "artist",
                        **{k: round(r["mean"][k], 4) for k in CARD_METRIC_KEYS}, "clip_rule": cv["clip_rule"]}
    if "vgmidi" in datasets:
        p = datasets["vgmidi"]["pooled"]
        out["vgmidi_cv"] = {"folds": cv["folds"], "grouping": "piece",
                            "global": {k: round(p["global"][k], 4) for k in REGRESSION_KEYS},
                            "per_piece": {k: round(p["per_song"][k], 4) for k in REGRESSION_KEYS},
                            "pooled": "every piece once, predicted by the model of its test fold"}
    if "emopia" in datasets:
        r = datasets["emopia"]
        out["emopia_val"] = {"split": "official song-level train -> val", "models": len(r["per_fold"]),
                             "n_clips": r["per_fold"][0]["n_test"],
                             **{k: round(r["mean"][k], 4) for k in CARD_METRIC_KEYS},
                             "clip_rule": cv["clip_rule"]}
    return out


def _headline(cv: dict[str, Any]) -> dict[str, Any]:
    """Summary numbers per data set for the command's JSON output."""
    out = {}
    for name, r in cv["datasets"].items():
        out[name] = r["mean"] if r["kind"] == "quadrant" else {"global": r["pooled"]["global"],
                                                                "per_song": r["pooled"]["per_song"]}
    return out


def train_main(args: argparse.Namespace) -> dict[str, Any]:
    """Cross-validate (``--folds`` > 1) and/or train the final model and export it; returns a summary."""
    opts = args
    torch.set_num_threads(max(1, int(opts.threads)))
    cfg = _config(opts)
    names = _check_datasets(opts.datasets)
    clips = load_clips(opts.data_root, names, _render_cache(opts), limit=opts.limit, seed=int(opts.seed),
                       soundfont=opts.soundfont, workers=int(opts.workers), progress=not opts.quiet)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    examples, cache = load_examples(
        clips, opts.cache, workers=int(opts.workers), progress=not opts.quiet,
        frontend=cfg.model_kwargs.get("frontend") or model_frontend(opts.model),  # e.g. mca on smile260
        frontend_params=cfg.frontend_params or None,
    )
    card = _card_template(opts, cache, cfg, names)
    extra = nonmusic_examples(cfg.nonmusic, opts.cache, cache.frontend_name, cache.frontend_params, seed=cfg.seed,
                              workers=int(opts.workers), progress=not opts.quiet)
    summary: dict[str, Any] = {"n_clips": len(clips), "n_clips_by_dataset": _count(clips, range(len(clips)))}
    if extra:
        summary["n_nonmusic"] = len(extra)
    cv = plan = None
    final = final_split(clips, cfg.seed) if opts.final else None
    if int(opts.folds or 0) > 1:
        plan = cv_splits(clips, int(opts.folds), int(opts.seed), cfg.seed)
    _write_splits(out / "splits.json", clips, plan, final)
    if getattr(opts, "ensemble", None):
        _check_ensemble_splits(opts, out)
    if plan is not None:
        cv = run_cv(clips, examples, opts, cfg, card, out, plan, extra_train=extra)
        cv.update(model=opts.model, config=asdict(cfg), machine=_machine(), command=_command(opts),
                  date=date.today().isoformat(), data=", ".join(names), n_clips=len(clips))
        stem = out / f"{opts.model}_{'_'.join(names)}_cv"
        stem.with_suffix(".json").write_text(json.dumps(cv, indent=1))
        stem.with_suffix(".md").write_text(cv_markdown(cv))
        summary["cv"] = _headline(cv)
        summary["cv_results"] = str(stem.with_suffix(".json"))
    elif opts.cv_results:
        try:
            cv = json.loads(Path(opts.cv_results).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read --cv-results {opts.cv_results}: {exc}") from None
    if final is not None:
        _log(opts, f"final: train {len(final['train'])}, val {len(final['val'])}, "
             f"held out (EMOPIA val) {len(final['excluded'])}")
        result, members = _fit(opts, "final", [examples[j] for j in final["train"]] + extra,
                               [examples[j] for j in final["val"]], cfg, card, out)
        final_card = copy.deepcopy(result.card)
        final_card.training = {
            **_training_text(opts, clips, np.concatenate([final["train"], final["val"]]), cfg),
            "excluded": f"EMOPIA official val split ({len(final['excluded'])} clips), kept for evaluation"
            if len(final["excluded"]) else "none",
            "command": _command(opts),
            "seed": cfg.seed,
            "epochs": len(result.history),
            "best_epoch": result.best_epoch + 1,
            "config": asdict(cfg),
            "date": date.today().isoformat(),
            **describe_objective(opts.model),
        }
        if members:
            final_card.training.update(_ensemble_text(members))
            final_card.training.pop("epochs")
            final_card.training.pop("best_epoch")
        if cv is not None:
            final_card.metrics = _card_metrics(cv)
        _save(out / "final_best.pt", cfg, result, members, final_card)
        summary["final"] = {**({"members": members} if members else {"best_epoch": result.best_epoch + 1}),
                            "seconds": round(result.seconds, 1), "checkpoint": str(out / "final_best.pt")}
        if opts.export:
            from emotrack.export.onnx import export_onnx

            report = export_onnx(result.model, final_card, opts.export)
            summary["export"] = str(report)
            _log(opts, str(report))
    return summary


# -- evaluation ------------------------------------------------------------------------------------


def evaluate_main(args: argparse.Namespace) -> dict[str, Any]:
    """Streamed-prediction metrics, per data set, of an exported (``.onnx``/bundled) or ``.pt`` model.

    EMOPIA is evaluated on its official val split unless ``--emopia-split`` says otherwise. With a single
    data set its metric keys are also repeated at the top level (the single-data-set output of old).
    """
    opts = args
    torch.set_num_threads(max(1, int(opts.workers)))
    if str(opts.model).endswith(".pt"):
        from emotrack.training.checkpoint import load_checkpoint

        model, card, _ = load_checkpoint(opts.model)
        predict = torch_predictor(model)
    else:
        from emotrack.training.evaluate import onnx_predictor

        predict, card = onnx_predictor(opts.model)
    names = _check_datasets(opts.datasets)
    result: dict[str, Any] = {"model": card.model_id, "n_clips": 0, "datasets": {}}
    norm = Normalizer.from_dict(card.normalization)
    for name in names:
        clips = load_clips(opts.data_root, [name], _render_cache(opts), limit=opts.limit, seed=int(opts.seed),
                           emopia_split=opts.emopia_split, soundfont=opts.soundfont, workers=int(opts.workers),
                           progress=not opts.quiet)
        examples, _ = load_examples(
            clips, opts.cache, workers=int(opts.workers), progress=not opts.quiet,
            frontend=card.frontend["name"], frontend_params=card.frontend.get("params"),
        )
        metrics = evaluate_predictions(examples, stream_predictions(predict, norm, examples))
        entry: dict[str, Any] = {"n_clips": len(examples)}
        if name == "emopia":
            entry["split"] = opts.emopia_split
        result["datasets"][name] = {**entry, **metrics}
        result["n_clips"] += len(examples)
    if len(names) == 1:
        result.update({k: v for k, v in result["datasets"][names[0]].items() if k != "n_clips"})
    if opts.out:
        Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.out).write_text(json.dumps(result, indent=1))
    return result
