"""Accuracy baselines and cross-data-set evaluation for ``bench/results/accuracy.md`` (issue #5).

Why this script: the zoo models' 4Q numbers come from ``emotrack train`` (artist-grouped CV, see
``emotrack/training/commands.py``); this script adds what the CLI does not do itself, on *the same
splits* so rows are comparable:

* ``4q``: the simple baselines on 4Q's artist-grouped 5 folds (``grouped_kfold(seed=0)``, as ``run_cv``):
  predict-the-mean, a static clip-level logistic regression on clip-mean log-mel statistics, and a
  loudness-only tracker (arousal = linear map of the causal short-term RMS level in dB, valence constant).
* ``vgmidi``: piece-grouped 5-fold CV on VGMIDI (continuous mean-annotator V/A per 0.5 s hop): the
  mean and loudness baselines, zoo models trained from scratch on the continuous targets
  (``continuous_loss``: MSE + 0.5 (1 - CCC)), and optionally zero-shot 4Q-trained checkpoints.
* ``emopia``: EMOPIA's official split (train -> val): mean, logistic-regression and loudness baselines
  and zero-shot 4Q-trained checkpoints.

Each run writes one JSON under ``--out`` (default ``bench/results/accuracy_parts``) with the command,
machine and date; ``python -m bench.accuracy.report`` turns them into ``bench/results/accuracy.md``/``.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from emotrack.training.metrics import classification_metrics, clip_quadrant, quadrant_of, regression_metrics

LOUDNESS_WINDOW_HOPS = 6
"""Short-term level window: the newest 3 s (6 hops), as EBU R128 short-term loudness."""


# -- features for the baselines --------------------------------------------------------------------


def rms_db(wave_frames: np.ndarray, window: int = LOUDNESS_WINDOW_HOPS) -> np.ndarray:
    """Causal short-term RMS level in dB per hop: mean power over the newest ``window`` hops (fewer at start)."""
    power = (np.asarray(wave_frames, np.float64) ** 2).mean(axis=1)
    csum = np.concatenate([[0.0], np.cumsum(power)])
    idx = np.arange(1, len(power) + 1)
    lo = np.maximum(idx - window, 0)
    return 10 * np.log10((csum[idx] - csum[lo]) / (idx - lo) + 1e-10)


def wav_levels(clips: Sequence[Any], hop: int = 8000, window: int = LOUDNESS_WINDOW_HOPS) -> list[np.ndarray]:
    """:func:`rms_db` per hop (over the newest ``window`` hops) read straight from rendered 16 kHz mono wav files
    (VGMIDI, EMOPIA).

    Why not the "wave" feature cache: that path decodes through the runtime's 20 ms file blocks, which costs
    minutes for hours of audio; for a loudness baseline the plain samples (same hop grid) are equivalent.
    """
    import soundfile as sf

    out = []
    for c in clips:
        x, sr = sf.read(str(c.audio_path), dtype="float32", always_2d=True)
        if sr != 16000:
            raise ValueError(f"{c.audio_path}: expected 16 kHz audio, got {sr}")
        x = x.mean(axis=1)
        n = len(x) // hop
        out.append(rms_db(x[: n * hop].reshape(n, hop), window))
    return out


def clip_stats(logmel_frames: np.ndarray) -> np.ndarray:
    """Static clip descriptor: per-band mean and std of the log-mel over the whole clip (128 values)."""
    x = np.asarray(logmel_frames, np.float64).reshape(-1, logmel_frames.shape[-1])
    return np.concatenate([x.mean(0), x.std(0)])


def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares ``y ~ a x + b`` (NaN targets dropped)."""
    keep = np.isfinite(y) & np.isfinite(x)
    a, b = np.polyfit(x[keep], y[keep], 1)
    return float(a), float(b)


def logreg(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """Standardised multinomial logistic regression (C=0.1: ~500 clips, 128 correlated features)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    return model.fit(train_x, train_y).predict(test_x)


# -- helpers ---------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    from emotrack.training.commands import machine_facts

    return machine_facts()


def write(out: Path, name: str, payload: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    payload.update(
        command="python -m bench.accuracy.zoo_bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        machine=machine(), date=date.today().isoformat(),
    )
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1))
    print(json.dumps({k: v for k, v in payload.items() if k not in ("per_fold",)}, indent=1)[:4000], flush=True)


def examples_for(clips: Sequence[Any], cache: str, frontend: str) -> list[Any]:
    from emotrack.training.examples import load_examples

    return load_examples(clips, cache, workers=1, progress=False, frontend=frontend)[0]


def quadrant_summary(truth: Sequence[int], pred: Sequence[int]) -> dict[str, Any]:
    m = classification_metrics(list(truth), list(pred))
    keys = ("weighted_f1", "accuracy", "precision", "recall", "confusion_matrix")
    return {k: m[k] for k in keys if k in m}


def fold_mean(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    keys = [k for k, v in rows[0].items() if isinstance(v, float)]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


# -- 4Q ----------------------------------------------------------------------------------------------


def run_4q(args: argparse.Namespace) -> None:
    from emotrack.data.fourq import load_4q
    from emotrack.data.splits import grouped_kfold

    clips = [c for c in load_4q(args.data_root) if c.audio_path is not None]
    mel = examples_for(clips, args.cache, "logmel")
    wave = examples_for(clips, args.cache, "wave")
    truth = np.array([c.quadrant for c in clips])
    signs = np.array([[1 if q in (1, 4) else -1, 1 if q in (1, 2) else -1] for q in truth], float)
    stats = np.stack([clip_stats(e.frames) for e in mel])
    level = [rms_db(e.frames) for e in wave]
    folds = grouped_kfold(clips, k=5, seed=0)
    rows: dict[str, list[dict[str, Any]]] = {"mean": [], "logreg": [], "loudness": []}
    for train, test in folds:
        mean_va = signs[train].mean(0)
        rows["mean"].append(quadrant_summary(truth[test], [int(quadrant_of(mean_va))] * len(test)))
        rows["logreg"].append(quadrant_summary(truth[test], logreg(stats[train], truth[train], stats[test])))
        a, b = fit_line(np.concatenate([level[i] for i in train]),
                        np.concatenate([np.full(len(level[i]), signs[i, 1]) for i in train]))
        pred = [clip_quadrant(np.stack([np.full(len(level[i]), mean_va[0]),
                                        np.clip(a * level[i] + b, -1, 1)], 1)) for i in test]
        rows["loudness"].append(quadrant_summary(truth[test], pred))
    result = {
        "data": "4q", "n_clips": len(clips),
        "split": "StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0) by artist (same folds as run_cv)",
        "baselines": {
            name: {"mean": fold_mean(r), "std": {k: float(np.std([x[k] for x in r])) for k in fold_mean(r)},
                   "per_fold": r}
            for name, r in rows.items()
        },
        "notes": {
            "mean": "predicts the training folds' mean (valence sign, arousal sign) -> one quadrant for every clip",
            "logreg": "static, not streamed: standardised logistic regression (C=0.1) on per-band mean+std of the "
            "clip's log-mel (128 features)",
            "loudness": f"arousal = clip(a * RMS_dB(newest {LOUDNESS_WINDOW_HOPS} hops) + b), a, b least squares on "
            "the training folds' hops vs the arousal sign; valence = training mean (constant); clip rule as the "
            "models (quadrant of the mean streamed va)",
        },
    }
    write(Path(args.out), "4q_baselines", result)


# -- VGMIDI ------------------------------------------------------------------------------------------


def _zoo_cfg(model: str, epochs: int, hparams: str | None) -> Any:
    from emotrack.training.trainer import TrainConfig

    cfg = TrainConfig(model=model, epochs=epochs, hops_per_clip=64, batch_clips=8, ema=0.98, smooth=3,
                      patience=40, freq_mask=12, ccc_weight=0.5)
    for k, v in json.loads(hparams or "{}").items():
        setattr(cfg, k, v)
    return cfg


def _train_predict(model: str, clips: Sequence[Any], ex: Sequence[Any], train: np.ndarray, test: np.ndarray,
                   cfg: Any) -> tuple[list[np.ndarray], dict[str, Any]]:
    from emotrack.data.splits import holdout
    from emotrack.export.metadata import ModelCard
    from emotrack.frontends import Normalizer
    from emotrack.training.evaluate import stream_predictions, torch_predictor
    from emotrack.training.trainer import train as fit

    inner_tr, inner_va = holdout([clips[i] for i in train], frac=0.2, seed=cfg.seed)
    frontend = cfg.model_kwargs.get("frontend") or "logmel"
    card = ModelCard(name=model, version="0.0.0", frontend={"name": frontend, "params": {}})
    res = fit([ex[i] for i in train[inner_tr]], [ex[i] for i in train[inner_va]], cfg, card, progress=False)
    preds = stream_predictions(torch_predictor(res.model), Normalizer.from_dict(res.card.normalization),
                               [ex[i] for i in test])
    return preds, {"best_epoch": res.best_epoch + 1, "seconds": round(res.seconds, 1)}


def _regression_rows(clips: Sequence[Any], ex: Sequence[Any], folds: Sequence[tuple[np.ndarray, np.ndarray]],
                     predict: Any) -> dict[str, Any]:
    """Pooled (all test pieces of all folds) per-piece and global metrics of ``predict(train, test)``."""
    preds: list[np.ndarray] = [None] * len(ex)  # type: ignore[list-item]
    info = []
    for train, test in folds:
        out, extra = predict(train, test)
        for i, p in zip(test, out, strict=True):
            preds[i] = p
        info.append(extra)
    m = regression_metrics(preds, [e.targets for e in ex])
    return {"pooled": m, "folds_info": info}


def run_vgmidi(args: argparse.Namespace) -> None:
    from emotrack.data.splits import grouped_kfold
    from emotrack.data.vgmidi import load_vgmidi

    clips = load_vgmidi(args.data_root, cache_dir=args.render_cache, progress=False)
    ex = examples_for(clips, args.cache, "logmel")
    folds = grouped_kfold(clips, k=5, seed=0)
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "data": "vgmidi", "n_pieces": len(clips),
        "split": "StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0) by piece, strata = mean-arousal "
        "quantile bins; metrics pooled over all test pieces (per-piece mean and global over all hops)",
        "labels": "mean over annotators per measure, resampled to the 0.5 s hop grid (load_vgmidi)",
        "rows": {},
    }
    targets = [e.targets for e in ex]
    if "baselines" in args.what:
        def mean_pred(train: np.ndarray, test: np.ndarray) -> tuple[list[np.ndarray], dict[str, Any]]:
            mu = np.nanmean(np.concatenate([targets[i] for i in train]), axis=0)
            return [np.broadcast_to(mu, (len(ex[i].frames), 2)).copy() for i in test], {}

        result["rows"]["mean"] = _regression_rows(clips, ex, folds, mean_pred)
        level = wav_levels(clips)

        def loud_pred(train: np.ndarray, test: np.ndarray) -> tuple[list[np.ndarray], dict[str, Any]]:
            y = np.concatenate([targets[i] for i in train])
            a, b = fit_line(np.concatenate([level[i] for i in train]), y[:, 1])
            mu_v = float(np.nanmean(y[:, 0]))
            out = [np.stack([np.full(len(level[i]), mu_v), np.clip(a * level[i] + b, -1, 1)], 1) for i in test]
            return out, {"a": a, "b": b}

        result["rows"]["loudness"] = _regression_rows(clips, ex, folds, loud_pred)
    for model in args.models:
        cfg = _zoo_cfg(model, args.epochs, args.hparams)

        frontend = cfg.model_kwargs.get("frontend") or "logmel"  # e.g. mca on logmel_tonal
        ex_model = ex if frontend == "logmel" else examples_for(clips, args.cache, frontend)

        def zoo_pred(train: np.ndarray, test: np.ndarray, cfg: Any = cfg, model: str = model, ex_model=ex_model) -> Any:
            return _train_predict(model, clips, ex_model, train, test, cfg)

        row = _regression_rows(clips, ex, folds, zoo_pred)
        row["config"] = {k: v for k, v in vars(cfg).items()}
        result["rows"][f"{model} (trained on VGMIDI)"] = row
    for ckpt in args.zero_shot:
        from emotrack.frontends import Normalizer
        from emotrack.training.checkpoint import load_checkpoint
        from emotrack.training.evaluate import stream_predictions, torch_predictor

        model, card, _ = load_checkpoint(ckpt)
        if card.frontend["name"] != "logmel" and not args.wave:
            print(f"skipping {ckpt}: {card.frontend['name']} front end (pass --wave to build that cache)")
            continue
        e2 = ex if card.frontend["name"] == "logmel" else examples_for(clips, args.cache, card.frontend["name"])
        preds = stream_predictions(torch_predictor(model), Normalizer.from_dict(card.normalization), e2)
        result["rows"][f"{Path(ckpt).stem} (zero-shot, 4Q-trained)"] = {
            "pooled": regression_metrics(preds, targets), "checkpoint": str(ckpt)}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    write(Path(args.out), f"vgmidi_{args.tag}", result)


# -- EMOPIA ------------------------------------------------------------------------------------------


def run_emopia(args: argparse.Namespace) -> None:
    from emotrack.data.emopia import load_emopia
    from emotrack.data.splits import emopia_official_split

    clips = [c for c in load_emopia(args.data_root, cache_dir=args.render_cache, progress=False) if c.audio_path]
    train, val = emopia_official_split(clips)
    use = np.concatenate([train, val]) if "logreg" in args.what else val
    sub = [clips[i] for i in use]
    ex = {c.id: e for c, e in zip(sub, examples_for(sub, args.cache, "logmel"), strict=True)}
    truth = np.array([c.quadrant for c in clips])
    result: dict[str, Any] = {"data": "emopia", "split": "official song-level split: train -> val",
                              "n_train": len(train), "n_val": len(val), "rows": {}}
    if "baselines" in args.what:
        signs = np.array([[1 if q in (1, 4) else -1, 1 if q in (1, 2) else -1] for q in truth], float)
        mean_va = signs[train].mean(0)
        result["rows"]["mean"] = quadrant_summary(truth[val], [int(quadrant_of(mean_va))] * len(val))
        if "logreg" in args.what:
            stats = {i: clip_stats(ex[clips[i].id].frames) for i in use}
            result["rows"]["logreg"] = quadrant_summary(
                truth[val],
                logreg(np.stack([stats[i] for i in train]), truth[train], np.stack([stats[i] for i in val])),
            )
        both = np.concatenate([train, val])
        level = dict(zip([clips[i].id for i in both], wav_levels([clips[i] for i in both]), strict=True))
        a, b = fit_line(np.concatenate([level[clips[i].id] for i in train]),
                        np.concatenate([np.full(len(level[clips[i].id]), signs[i, 1]) for i in train]))
        pred = [clip_quadrant(np.stack([np.full(len(level[clips[i].id]), mean_va[0]),
                                        np.clip(a * level[clips[i].id] + b, -1, 1)], 1)) for i in val]
        result["rows"]["loudness"] = quadrant_summary(truth[val], pred)
    for ckpt in args.zero_shot:
        from emotrack.frontends import Normalizer
        from emotrack.training.checkpoint import load_checkpoint
        from emotrack.training.evaluate import stream_predictions, torch_predictor

        model, card, _ = load_checkpoint(ckpt)
        if card.frontend["name"] != "logmel" and not args.wave:
            print(f"skipping {ckpt}: {card.frontend['name']} front end (pass --wave to build that cache)")
            continue
        vclips = [clips[i] for i in val]
        e2 = [ex[c.id] for c in vclips] if card.frontend["name"] == "logmel" else examples_for(
            vclips, args.cache, card.frontend["name"])
        preds = stream_predictions(torch_predictor(model), Normalizer.from_dict(card.normalization), e2)
        result["rows"][f"{Path(ckpt).stem} (zero-shot, 4Q-trained)"] = quadrant_summary(
            truth[val], [clip_quadrant(p) for p in preds])
    write(Path(args.out), f"emopia_{args.tag}", result)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", choices=["4q", "vgmidi", "emopia"])
    p.add_argument("--data-root", default="../shared/data")
    p.add_argument("--cache", default=".cache/features", help="feature cache (FeatureCache root)")
    p.add_argument("--render-cache", default=".cache/emotrack", help="rendered MIDI audio (VGMIDI, EMOPIA)")
    p.add_argument("--out", default="bench/results/accuracy_parts")
    p.add_argument("--what", nargs="*", default=["baselines"],
                   help="'baselines' (mean, loudness); add 'logreg' for EMOPIA's clip-level logistic regression")
    p.add_argument("--models", nargs="*", default=[], help="zoo models to train with piece-grouped CV (VGMIDI)")
    p.add_argument("--zero-shot", nargs="*", default=[], help="4Q-trained .pt checkpoints to evaluate as they are")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--hparams", default=None, help="JSON overriding TrainConfig fields (VGMIDI training)")
    p.add_argument("--tag", default="main")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--wave", action="store_true", help="also zero-shot raw-waveform models (slow wave cache)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    {"4q": run_4q, "vgmidi": run_vgmidi, "emopia": run_emopia}[args.data](args)


if __name__ == "__main__":
    main()
