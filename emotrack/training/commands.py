"""What ``emotrack train`` and ``emotrack evaluate`` run: data -> features -> CV / final model -> files.

Both take an ``argparse.Namespace`` so the CLI parser stays the single place that defines options.
Attributes read (defaults in :data:`TRAIN_DEFAULTS` / :data:`EVAL_DEFAULTS` apply when absent):

``train_main``
    ``model`` (zoo name, "mca"), ``data_root`` (e.g. ``../shared/data``), ``datasets`` (list, e.g.
    ``["4q"]``), ``cache`` (feature cache dir), ``out`` (run dir: checkpoints, CV JSON), ``folds``
    (k for grouped CV; 0/1 = no CV), ``final`` (bool: also train on all clips), ``export`` (ONNX path
    for the final model, optional), ``epochs``, ``seed``, ``limit`` (max clips, balanced over
    quadrants, for CI), ``resume`` (bool), ``hparams`` (JSON overriding :class:`TrainConfig` fields,
    e.g. ``'{"lr": 1e-3, "model_kwargs": {"hidden": 64}}'``), ``workers`` (feature processes),
    ``threads`` (torch intra-op threads; 1 is fastest for these small LSTMs on a shared 2-core box),
    ``cv_results`` (CV JSON whose means go into the card when ``folds`` is 0), ``command`` (the
    command line to record; defaults to ``sys.argv``), ``quiet``.

``evaluate_main``
    ``model`` (an ``.onnx`` file, bundled name or ``.pt`` checkpoint), ``data_root``, ``datasets``,
    ``cache``, ``limit``, ``out`` (JSON file for the metrics, optional), ``workers``, ``quiet``.
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

from emotrack.export.metadata import ModelCard
from emotrack.frontends import Normalizer
from emotrack.models.registry import EXTRA_OUTPUTS
from emotrack.training.evaluate import evaluate_predictions, stream_predictions, torch_predictor
from emotrack.training.features import FeatureCache
from emotrack.training.objectives import describe as describe_objective
from emotrack.training.objectives import model_frontend
from emotrack.training.trainer import Example, TrainConfig, train

__all__ = ["EVAL_DEFAULTS", "TRAIN_DEFAULTS", "evaluate_main", "load_examples", "run_cv", "train_main"]

TRAIN_DEFAULTS: dict[str, Any] = {
    "model": "mca",
    "data_root": "../shared/data",
    "datasets": ["4q"],
    "cache": ".cache/features",
    "out": "runs/mca",
    "folds": 5,
    "final": True,
    "export": None,
    "epochs": 80,
    "seed": 0,
    "limit": None,
    "resume": False,
    "hparams": None,
    "workers": 2,
    "threads": 1,
    "cv_results": None,
    "command": None,
    "quiet": False,
}
EVAL_DEFAULTS: dict[str, Any] = {
    "model": "mca",
    "data_root": "../shared/data",
    "datasets": ["4q"],
    "cache": ".cache/features",
    "limit": None,
    "out": None,
    "workers": 2,
    "quiet": False,
}
CARD_METRIC_KEYS = (
    "weighted_f1", "accuracy", "precision", "recall", "arousal_sign_accuracy", "valence_sign_accuracy",
)
FRONTEND_TEXT = {
    "logmel": "log-mel frames",
    "wave": "raw 16 kHz audio",
    "smile260": "openSMILE ComParE LLD + delta mean/std (Smile-260) frames",
}


def architecture_text(model: str, kwargs: dict[str, Any]) -> str:
    """Human-readable architecture line for the model card."""
    if model != "mca":
        from emotrack.models.registry import ARCHITECTURES

        return ARCHITECTURES.get(model, model)
    import inspect

    from emotrack.models.mca import MCA

    p = {k: v.default for k, v in inspect.signature(MCA.__init__).parameters.items() if k != "self"}
    p.update(kwargs)
    return (
        "MCA-C (Ma et al., ACM MM 2017; causal joint V/A variant): each 0.5 s log-mel patch [25x64] -> in-graph "
        "per-band mean/std/|delta|/max/min, onset envelope, sub-band spectral contrast and loudness-envelope "
        f"statistics -> linear+LayerNorm+GELU (d={p['d']}); three {p['layers']}-layer attention-LSTMs "
        f"(hidden {p['hidden']}) over the newest 5/10/20 frames (2.5/5/10 s); per-output multi-scale attention "
        "fusion; va = tanh(logits)"
    )


def _opts(args: argparse.Namespace, defaults: dict[str, Any]) -> argparse.Namespace:
    merged = dict(defaults)
    merged.update({k: v for k, v in vars(args).items() if v is not None or k not in defaults})
    return argparse.Namespace(**merged)


# -- data ------------------------------------------------------------------------------------------


def _load_clips(data_root: str | Path, datasets: Sequence[str]) -> list[Any]:
    """Clips from ``emotrack.data`` for the named data sets (only those with audio are usable here)."""
    clips: list[Any] = []
    for name in datasets:
        if name == "4q":
            from emotrack.data.fourq import load_4q

            clips += load_4q(data_root)
        else:
            raise ValueError(f"training on {name!r} is not wired up yet (available: 4q)")
    return [c for c in clips if c.audio_path is not None]


def _limit(clips: list[Any], limit: int | None, seed: int) -> list[Any]:
    """At most ``limit`` clips, balanced over quadrants (for quick CI runs), in a seeded order."""
    if not limit or limit >= len(clips):
        return clips
    rng = np.random.default_rng(seed)
    by_q: dict[Any, list[Any]] = {}
    for c in clips:
        by_q.setdefault(c.quadrant, []).append(c)
    picked = []
    per = max(1, limit // len(by_q))
    for q in sorted(by_q, key=str):
        members = by_q[q]
        picked += [members[i] for i in sorted(rng.choice(len(members), min(per, len(members)), replace=False))]
    return picked[:limit]


def load_examples(
    clips: Sequence[Any],
    cache_root: str | Path,
    workers: int = 2,
    progress: bool = True,
    frontend: str = "logmel",
    frontend_params: dict[str, Any] | None = None,
) -> tuple[list[Example], FeatureCache]:
    """Cache the front-end frames of ``clips`` and wrap them as :class:`Example`."""
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


# -- training --------------------------------------------------------------------------------------


def _config(opts: argparse.Namespace) -> TrainConfig:
    cfg = TrainConfig(model=opts.model, epochs=int(opts.epochs), seed=int(opts.seed))
    extra = json.loads(opts.hparams) if isinstance(opts.hparams, str) else dict(opts.hparams or {})
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(extra) - known
    if unknown:
        raise ValueError(f"unknown hyperparameters {sorted(unknown)} (known: {sorted(known)})")
    for k, v in extra.items():
        setattr(cfg, k, v)
    return cfg


def _card_template(opts: argparse.Namespace, cache: FeatureCache, cfg: TrainConfig) -> ModelCard:
    return ModelCard(
        name=opts.model,
        version="0.1.0",
        frontend={"name": cache.frontend_name, "params": cache.frontend_params},
        architecture=architecture_text(opts.model, cfg.model_kwargs),
        description=(
            "Causal streaming music emotion model: every 0.5 s it reads the newest 10 s of "
            f"{FRONTEND_TEXT.get(cache.frontend_name, cache.frontend_name)} and "
            "outputs (valence, arousal) in [-1, 1]. Trained on static 4Q quadrant labels, so va is the expected "
            "sign of valence/arousal (its quadrant is the predicted Russell quadrant); magnitudes are "
            "confidence, not graded intensity."
        ),
        training={"config": asdict(cfg), **describe_objective(opts.model)},
        outputs={"va": ["valence", "arousal"], "range": [-1.0, 1.0], "extra": dict(EXTRA_OUTPUTS.get(opts.model, {}))},
    )


def _inner_split(clips: Sequence[Any], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Artist-grouped, quadrant-stratified ~1/7 holdout for early stopping (never the test fold).

    Tiny subsets (CI) hold out a larger share, so that every quadrant can still appear in both parts.
    """
    from emotrack.data.splits import grouped_kfold

    counts = np.unique([c.quadrant or 0 for c in clips], return_counts=True)[1]
    return grouped_kfold(clips, k=int(np.clip(counts.min(), 2, 7)), seed=seed)[0]


def run_cv(
    clips: Sequence[Any],
    examples: Sequence[Example],
    opts: argparse.Namespace,
    cfg: TrainConfig,
    card: ModelCard,
    out: Path,
) -> dict[str, Any]:
    """Artist-grouped stratified k-fold CV; each fold early-stops on an inner grouped holdout."""
    from emotrack.data.splits import assert_group_disjoint, grouped_kfold

    folds = grouped_kfold(clips, k=int(opts.folds), seed=int(opts.seed))
    per_fold, all_examples, all_preds = [], [], []
    t0 = time.perf_counter()
    for i, (train_idx, test_idx) in enumerate(folds):
        dev = [clips[j] for j in train_idx]
        inner_train, inner_val = _inner_split(dev, cfg.seed)
        tr, va = train_idx[inner_train], train_idx[inner_val]
        assert_group_disjoint(clips, tr, test_idx)
        assert_group_disjoint(clips, va, test_idx)
        if not opts.quiet:
            print(f"fold {i + 1}/{len(folds)}: train {len(tr)}, val {len(va)}, test {len(test_idx)}", flush=True)
        result = train(
            [examples[j] for j in tr], [examples[j] for j in va], cfg, card,
            checkpoint=out / f"fold{i}.pt", resume=bool(opts.resume), progress=not opts.quiet,
        )
        test = [examples[j] for j in test_idx]
        preds = stream_predictions(torch_predictor(result.model), Normalizer.from_dict(result.card.normalization), test)
        metrics = evaluate_predictions(test, preds)
        per_fold.append(
            {
                "fold": i,
                "n_train": len(tr), "n_val": len(va), "n_test": len(test_idx),
                "best_epoch": result.best_epoch + 1, "epochs_run": len(result.history),
                "train_seconds": round(result.seconds, 1),
                **{k: metrics["quadrant"][k] for k in (*CARD_METRIC_KEYS, "confusion_matrix")},
                "vote_weighted_f1": metrics["quadrant_vote"]["weighted_f1"],
                "history": result.history,
            }
        )
        all_examples += test
        all_preds += preds
        if not opts.quiet:
            print(f"fold {i + 1}: weighted F1 {metrics['quadrant']['weighted_f1']:.3f}, "
                  f"acc {metrics['quadrant']['accuracy']:.3f}", flush=True)
    pooled = evaluate_predictions(all_examples, all_preds)
    mean = {k: float(np.mean([f[k] for f in per_fold])) for k in (*CARD_METRIC_KEYS, "vote_weighted_f1")}
    std = {k: float(np.std([f[k] for f in per_fold])) for k in CARD_METRIC_KEYS}
    return {
        "folds": len(folds),
        "grouping": "artist",
        "split": f"StratifiedGroupKFold(n_splits={len(folds)}, shuffle=True, random_state={opts.seed}) by artist",
        "inner_validation": "an artist-grouped stratified holdout of 1/7 of each training fold "
        "(epoch/config selection only)",
        "clip_rule": "quadrant of the mean streamed (valence, arousal) over all hops of the clip",
        "mean": mean,
        "std": std,
        "pooled": {k: pooled["quadrant"][k] for k in (*CARD_METRIC_KEYS, "confusion_matrix")},
        "pooled_vote": {k: pooled["quadrant_vote"][k] for k in CARD_METRIC_KEYS},
        "per_fold": per_fold,
        "clips": pooled["clips"],
        "total_train_seconds": round(time.perf_counter() - t0, 1),
    }


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _command(opts: argparse.Namespace) -> str:
    return opts.command or " ".join(shlex.quote(a) for a in ["emotrack", *sys.argv[1:]])


def cv_markdown(cv: dict[str, Any]) -> str:
    """A short Markdown report of a CV result (per-fold table, mean, pooled confusion matrix)."""
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    keys = ("weighted_f1", "accuracy", "precision", "recall", "valence_sign_accuracy", "arousal_sign_accuracy")
    lines = [
        f"# {cv.get('model', 'model')} on {cv.get('data', '4q')}: {cv['folds']}-fold artist-grouped CV",
        "",
        f"Split: {cv['split']}; epoch selection on {cv['inner_validation']}. Clip rule: {cv['clip_rule']}. "
        "Metrics are sklearn weighted averages over the 4 quadrants, in %, on causal streamed predictions.",
        "",
        "| fold | test clips | best epoch | W-F1 | acc | P | R | V sign acc | A sign acc |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in cv["per_fold"]:
        cells = " | ".join(pct(f[k]) for k in keys)
        lines.append(f"| {f['fold'] + 1} | {f['n_test']} | {f['best_epoch']} | {cells} |")
    lines.append("| **mean** | | | " + " | ".join(f"**{pct(cv['mean'][k])}**" for k in keys) + " |")
    lines.append("| std | | | " + " | ".join(pct(cv["std"][k]) for k in keys) + " |")
    cm = cv["pooled"]["confusion_matrix"]
    lines += [
        "",
        "Pooled confusion matrix (rows = true, columns = predicted):",
        "",
        "| | Q1 | Q2 | Q3 | Q4 |",
        "|---|---|---|---|---|",
        *(f"| Q{i + 1} | " + " | ".join(str(v) for v in row) + " |" for i, row in enumerate(cm)),
        "",
        f"Majority vote over hops instead of the clip mean: weighted F1 {pct(cv['mean']['vote_weighted_f1'])} "
        "(fold mean).",
        "",
        f"Machine: {cv['machine']['cpu']}, {cv['machine']['cores']} cores "
        f"(torch {cv['machine']['torch']}, {cv['machine']['torch_threads']} thread); "
        f"training time for all folds {cv['total_train_seconds'] / 60:.1f} min "
        "(wall clock, machine shared with other jobs).",
        "",
        f"Command: `{cv['command']}`",
    ]
    return "\n".join(lines) + "\n"


def _card_metrics(cv: dict[str, Any]) -> dict[str, Any]:
    return {
        "4q_cv": {
            "folds": cv["folds"],
            "grouping": cv["grouping"],
            **{k: round(cv["mean"][k], 4) for k in CARD_METRIC_KEYS},
            "clip_rule": cv["clip_rule"],
        }
    }


def train_main(args: argparse.Namespace) -> dict[str, Any]:
    """Cross-validate (``folds`` > 1) and/or train the final model and export it; returns a summary."""
    opts = _opts(args, TRAIN_DEFAULTS)
    torch.set_num_threads(max(1, int(opts.threads)))
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = _config(opts)
    clips = _limit(_load_clips(opts.data_root, opts.datasets), opts.limit, opts.seed)
    examples, cache = load_examples(
        clips, opts.cache, workers=int(opts.workers), progress=not opts.quiet,
        frontend=cfg.model_kwargs.get("frontend") or model_frontend(opts.model),  # e.g. mca on smile260
    )
    card = _card_template(opts, cache, cfg)
    summary: dict[str, Any] = {"n_clips": len(clips)}
    cv = None
    if int(opts.folds or 0) > 1:
        cv = run_cv(clips, examples, opts, cfg, card, out)
        cv.update(model=opts.model, config=asdict(cfg), machine=_machine(), command=_command(opts),
                  date=date.today().isoformat(), data=", ".join(opts.datasets), n_clips=len(clips))
        stem = out / f"{opts.model}_{'_'.join(opts.datasets)}_cv"
        stem.with_suffix(".json").write_text(json.dumps(cv, indent=1))
        stem.with_suffix(".md").write_text(cv_markdown(cv))
        summary["cv"] = cv["mean"]
    elif opts.cv_results:
        cv = json.loads(Path(opts.cv_results).read_text())
    if opts.final:
        inner_train, inner_val = _inner_split(clips, cfg.seed)
        result = train(
            [examples[j] for j in inner_train], [examples[j] for j in inner_val], cfg, card,
            checkpoint=out / "final.pt", resume=bool(opts.resume), progress=not opts.quiet,
        )
        final_card = copy.deepcopy(result.card)
        final_card.training = {
            "data": "4Q development set (720 clips, ../shared/data/4q)" if opts.datasets == ["4q"] and not opts.limit
            else f"{', '.join(opts.datasets)} ({len(clips)} clips)",
            "targets": "static quadrant -> (valence sign, arousal sign) on every hop; BCE on 2*logits vs (sign+1)/2 "
            f"with label smoothing {cfg.label_smoothing}, so va = tanh(logits) is the expected sign",
            "command": _command(opts),
            "seed": cfg.seed,
            "epochs": len(result.history),
            "best_epoch": result.best_epoch + 1,
            "model_selection": "best 3-epoch-smoothed score on an artist-grouped stratified 1/7 holdout",
            "config": asdict(cfg),
            "date": date.today().isoformat(),
            **describe_objective(opts.model),
        }
        if cv is not None:
            final_card.metrics = _card_metrics(cv)
        from emotrack.training.checkpoint import save_checkpoint

        save_checkpoint(out / "final_best.pt", cfg.model, cfg.model_kwargs, result.model, final_card)
        summary["final"] = {"best_epoch": result.best_epoch + 1, "seconds": round(result.seconds, 1)}
        if opts.export:
            from emotrack.export.onnx import export_onnx

            report = export_onnx(result.model, final_card, opts.export)
            summary["export"] = str(report)
            if not opts.quiet:
                print(report, flush=True)
    return summary


# -- evaluation ------------------------------------------------------------------------------------


def evaluate_main(args: argparse.Namespace) -> dict[str, Any]:
    """Streamed-prediction metrics of an exported (``.onnx``/bundled) or checkpointed (``.pt``) model."""
    opts = _opts(args, EVAL_DEFAULTS)
    torch.set_num_threads(max(1, int(opts.workers)))
    if str(opts.model).endswith(".pt"):
        from emotrack.training.checkpoint import load_checkpoint

        model, card, _ = load_checkpoint(opts.model)
        predict = torch_predictor(model)
    else:
        from emotrack.training.evaluate import onnx_predictor

        predict, card = onnx_predictor(opts.model)
    clips = _limit(_load_clips(opts.data_root, opts.datasets), opts.limit, 0)
    examples, _ = load_examples(
        clips, opts.cache, workers=int(opts.workers), progress=not opts.quiet,
        frontend=card.frontend["name"], frontend_params=card.frontend.get("params"),
    )
    preds = stream_predictions(predict, Normalizer.from_dict(card.normalization), examples)
    result = {"model": card.model_id, "n_clips": len(examples), **evaluate_predictions(examples, preds)}
    if opts.out:
        Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.out).write_text(json.dumps(result, indent=1))
    return result
