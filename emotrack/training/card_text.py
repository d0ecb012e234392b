"""What a trained model's card says about it: architecture, outputs, data, targets and CV metrics.

Kept apart from the training loop so that the text a user reads in ``emotrack models`` has one home, and
bench scripts that bundle a file (``bench/accuracy/bundle_default.py``) build the same entries.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from emotrack.data.clips import Clip
from emotrack.export.metadata import ModelCard
from emotrack.models.registry import EXTRA_OUTPUTS, MUSIC_OUTPUT
from emotrack.training.examples import MIDI_DATASETS, QUADRANT_DATASETS, check_datasets, count_by_dataset
from emotrack.training.features import FeatureCache
from emotrack.training.objectives import describe as describe_objective
from emotrack.training.trainer import TrainConfig

__all__ = [
    "CARD_METRIC_KEYS",
    "GROUP_TEXT",
    "REGRESSION_KEYS",
    "architecture_text",
    "card_description",
    "card_metrics",
    "card_template",
    "ensemble_text",
    "training_text",
]

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


def architecture_text(model: str, kwargs: dict[str, Any], frontend_params: dict[str, Any] | None = None) -> str:
    """Human-readable architecture line for the model card (``frontend_params``: e.g. musicnn's ``layer``)."""
    if model != "mca":
        from emotrack.models.registry import ARCHITECTURES

        return ARCHITECTURES.get(model, model)
    import inspect

    from emotrack.frontends.musicnn import WIDTHS
    from emotrack.models.mca import MCA

    p = {k: v.default for k, v in inspect.signature(MCA.__init__).parameters.items() if k != "self"}
    p.update(kwargs)
    layer = (frontend_params or {}).get("layer", "penultimate")
    width = f"{WIDTHS.get(layer, '?')} values" + ("" if layer == "penultimate" else f" of its {layer} layer")
    frame = {
        "musicnn": f"each 0.5 s hop's streamed musicnn embedding of its newest 2.9 s of final frames ({width})",
        "musicnn_tonal": "each 0.5 s hop's streamed musicnn embeddings of its newest 2.9 s and 1.0 s of final frames "
                         f"(2 x {width}) and the mean/std of its 25 rows of chroma and key clarity (28 values)",
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


def card_description(datasets: Sequence[str], frontend: str, cfg: TrainConfig | None = None) -> str:
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


def card_template(
    opts: argparse.Namespace, cache: FeatureCache, cfg: TrainConfig, datasets: Sequence[str]
) -> ModelCard:
    """The card every model of a run starts from (version 0.1.0; the trainer adds normalisation, CV adds metrics)."""
    return ModelCard(
        name=opts.model,
        version="0.1.0",
        frontend={"name": cache.frontend_name, "params": cache.frontend_params},
        architecture=architecture_text(opts.model, cfg.model_kwargs, cache.frontend_params),
        description=card_description(datasets, cache.frontend_name, cfg),
        training={"config": asdict(cfg), **describe_objective(opts.model)},
        outputs={"va": ["valence", "arousal"], "range": [-1.0, 1.0],
                 "extra": {**EXTRA_OUTPUTS.get(opts.model, {}),
                           **(MUSIC_OUTPUT if cfg.model_kwargs.get("music_head") else {})}},
    )


def training_text(opts: argparse.Namespace, clips: Sequence[Clip], idx: np.ndarray, cfg: TrainConfig) -> dict:
    """``data``, ``targets`` and ``model_selection`` of the final card: what the model was really trained on."""
    used = count_by_dataset(clips, idx)
    names = [n for n in check_datasets(opts.datasets) if n in used]
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
    shifted = [n for n in names if n not in MIDI_DATASETS]
    if cfg.pitch_shifts and shifted:
        steps = ", ".join(f"{s:+d}" for s in cfg.pitch_shifts)
        targets.append(f"pitch-shifted copies ({steps} semitones, librosa) of every {', '.join(shifted)} clip keep "
                       "its labels; each use of a clip draws the original or a copy")
    if cfg.model_kwargs.get("music_head"):
        targets.append(f"music head: {cfg.music_weight} x BCE(music logit, 1 for music hops, 0 for non-music hops)")
    selection = (f"best {cfg.smooth}-epoch-smoothed score on a grouped stratified 1/7 holdout "
                 f"({', '.join(f'{n} by {GROUP_TEXT[n]}' for n in names)}): {' and '.join(scores)}"
                 + (", averaged" if len(scores) > 1 else ""))
    return {"data": data, "targets": "; ".join(targets), "model_selection": selection}


def ensemble_text(members: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``training`` entries of an ensemble's card (fold and final alike)."""
    return {"ensemble": f"mean of the outputs of {len(members)} models trained by this recipe with different "
                        "seeds (hparams seed)", "members": members}


def card_metrics(cv: dict[str, Any]) -> dict[str, Any]:
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
