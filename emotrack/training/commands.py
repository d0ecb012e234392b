"""What ``emotrack train`` and ``emotrack evaluate`` run: data -> features -> CV / final model -> files.

Both take the ``argparse.Namespace`` that :func:`emotrack.cli.build_parser` produces, so the parser is the
single place that defines options and their defaults (build one in code with
``build_parser().parse_args(["train", "mca", ...])``).

The pieces live beside this module: which clips and frames (:mod:`emotrack.training.examples`), the grouped
folds and the final split (:mod:`emotrack.training.folds`), the training loop and its losses
(:mod:`emotrack.training.trainer`, :mod:`emotrack.training.losses`) and what the model card says
(:mod:`emotrack.training.card_text`). Metrics are per data set and per fold, never pooled across sets;
``<out>/splits.json`` lists the clip ids of every part, for audit.
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

from emotrack.data.clips import Clip
from emotrack.errors import ConfigError
from emotrack.export.metadata import ModelCard
from emotrack.frontends import Normalizer
from emotrack.training.card_text import (
    CARD_METRIC_KEYS,
    GROUP_TEXT,
    REGRESSION_KEYS,
    card_metrics,
    card_template,
    ensemble_text,
    training_text,
)
from emotrack.training.checkpoint import save_checkpoint
from emotrack.training.cv_report import cv_markdown
from emotrack.training.evaluate import evaluate_predictions, stream_predictions, torch_predictor
from emotrack.training.examples import (
    QUADRANT_DATASETS,
    check_datasets,
    count_by_dataset,
    load_clips,
    load_examples,
    nonmusic_examples,
)
from emotrack.training.folds import cv_splits, final_split, write_splits
from emotrack.training.objectives import describe as describe_objective
from emotrack.training.objectives import model_frontend
from emotrack.training.trainer import Example, TrainConfig, TrainResult, train

__all__ = ["evaluate_main", "machine_facts", "run_cv", "train_main"]


def _log(opts: argparse.Namespace, text: str) -> None:
    """Progress line on stderr (stdout carries the JSON summary)."""
    if not opts.quiet:
        print(text, file=sys.stderr, flush=True)


def _render_cache(opts: argparse.Namespace) -> Path:
    """``--render-cache``, defaulting to ``--cache`` (where ``emotrack data prepare`` renders too)."""
    return Path(opts.render_cache or opts.cache)


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
    shifts = cfg.pitch_shifts
    if not isinstance(shifts, list) or any(type(s) is not int or not 0 < abs(s) <= 12 for s in shifts) \
            or len(set(shifts)) != len(shifts):
        raise ConfigError(f"pitch_shifts must be a list of distinct non-zero semitones within ±12, got {shifts!r}")
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
    merged.training = {**merged.training, **ensemble_text(members)}
    return TrainResult(model, merged, history=[], best_epoch=-1, seconds=0.0), members



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
            "n_train_by_dataset": count_by_dataset(clips, tr), "n_test_by_dataset": count_by_dataset(clips, te),
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


def machine_facts() -> dict[str, Any]:
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
    names = check_datasets(opts.datasets)
    clips = load_clips(opts.data_root, names, _render_cache(opts), limit=opts.limit, seed=int(opts.seed),
                       soundfont=opts.soundfont, workers=int(opts.workers), progress=not opts.quiet)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    examples, cache = load_examples(
        clips, opts.cache, workers=int(opts.workers), progress=not opts.quiet,
        frontend=cfg.model_kwargs.get("frontend") or model_frontend(opts.model),  # e.g. mca on smile260
        frontend_params=cfg.frontend_params or None, pitch_shifts=cfg.pitch_shifts,
    )
    card = card_template(opts, cache, cfg, names)
    extra = nonmusic_examples(cfg.nonmusic, opts.cache, cache.frontend_name, cache.frontend_params, seed=cfg.seed,
                              workers=int(opts.workers), progress=not opts.quiet)
    summary: dict[str, Any] = {"n_clips": len(clips), "n_clips_by_dataset": count_by_dataset(clips, range(len(clips)))}
    if extra:
        summary["n_nonmusic"] = len(extra)
    cv = plan = None
    final = final_split(clips, cfg.seed) if opts.final else None
    if int(opts.folds or 0) > 1:
        plan = cv_splits(clips, int(opts.folds), int(opts.seed), cfg.seed)
    write_splits(out / "splits.json", clips, plan, final)
    if getattr(opts, "ensemble", None):
        _check_ensemble_splits(opts, out)
    if plan is not None:
        cv = run_cv(clips, examples, opts, cfg, card, out, plan, extra_train=extra)
        cv.update(model=opts.model, config=asdict(cfg), machine=machine_facts(), command=_command(opts),
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
            **training_text(opts, clips, np.concatenate([final["train"], final["val"]]), cfg),
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
            final_card.training.update(ensemble_text(members))
            final_card.training.pop("epochs")
            final_card.training.pop("best_epoch")
        if cv is not None:
            final_card.metrics = card_metrics(cv)
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
    names = check_datasets(opts.datasets)
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
