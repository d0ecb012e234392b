"""Would a second pretrained musicnn network add to the default's? A linear probe, before any training.

Why: every ensemble of the default so far averaged seeds of one front end, and seeds of one recipe make much the
same errors (``bench/results/ensemble_forecast.md``). The ``musicnn`` wheel holds a second network of the same
architecture, ``MTT_musicnn``, trained on MagnaTagATune's tags instead of the Million Song Dataset's: the same
audio seen through other training data. If the two views err differently on 4Q, read-outs of both beat either.

Rows (each clip: the mean over its hops of the default's front-end frame,
:class:`~emotrack.frontends.musicnn_tonal.MusicnnTonal`, computed with each network): each network alone, both
frames concatenated, and the two networks' read-outs with their class probabilities averaged (what an ensemble of
one model per network would do). Scored as ``layer_probe`` does: multinomial logistic regression, artist-grouped
stratified 5-fold (seed 0), the penalty chosen by an artist-grouped inner 4-fold CV inside each training part.
A probe, not a shipped file.

The second network is not bundled: build its streaming graph with the two one-off tools (the first in the
TensorFlow environment their docstrings give) and name it here::

    python -m emotrack.export.musicnn_tf /tmp/mtt/musicnn_mtt.onnx MTT_musicnn
    python -m emotrack.export.musicnn_stream /tmp/mtt/musicnn_mtt.onnx
    python -m bench.accuracy.network_probe --network mtt=/tmp/mtt/musicnn_mtt_stream.onnx \\
        --data-root ../shared/data --render-cache /tmp/emocache --cache /tmp/emo/cache
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.accuracy.dynamics_probe import write_probe
from bench.accuracy.layer_probe import clip_means, fit_readout, fourq_parser, probe, probe_document


def register(spec: str) -> str:
    """``NAME=PATH`` of a streaming graph (its ``_backend`` graph beside it) -> NAME, usable as front-end ``weights``.

    Cache workers are forked, so they see the registration too."""
    from emotrack.frontends import musicnn

    name, _, path = spec.partition("=")
    graph = Path(path)
    if not name or not graph.is_file() or not graph.with_name(graph.name.replace("_stream", "_backend")).is_file():
        raise SystemExit(f"error: --network {spec}: give NAME=PATH of a *_stream.onnx with its *_backend.onnx beside")
    musicnn.WEIGHTS[name] = graph
    return name


def paired_probe(views: dict[str, np.ndarray], clips: Sequence[Any],
                 folds: Sequence[tuple[np.ndarray, np.ndarray]], seed: int = 0) -> dict[str, dict[str, Any]]:
    """Artist-grouped CV of one read-out per view (each tuned as :func:`probe` tunes one, and scoring as it
    would), plus a row for their class probabilities averaged: each fold's read-outs are fitted once for both."""
    from emotrack.training.metrics import classification_metrics

    y = np.array([c.quadrant for c in clips])
    groups = np.array([c.group for c in clips])
    averaged = f"{', '.join(views)}: probabilities averaged"
    scores: dict[str, list[float]] = {name: [] for name in [*views, averaged]}
    chosen: dict[str, list[float]] = {name: [] for name in views}
    for train, test in folds:
        proba = []
        for name, x in views.items():
            fit = fit_readout(x[train], y[train], groups[train], seed)
            scores[name].append(classification_metrics(y[test], fit.predict(x[test]))["weighted_f1"])
            chosen[name].append(float(fit.best_params_["logisticregression__C"]))
            proba.append(fit.predict_proba(x[test]))
        scores[averaged].append(classification_metrics(y[test], fit.classes_[np.mean(proba, 0).argmax(1)])[
            "weighted_f1"])
    widths = {name: int(x.shape[1]) for name, x in views.items()}
    widths[averaged] = sum(widths.values())
    return {name: {"weighted_f1_mean": float(np.mean(s)), "weighted_f1_std": float(np.std(s)),
                   "per_fold": [round(v, 4) for v in s], **({"chosen_C": chosen[name]} if name in chosen else {}),
                   "width": widths[name]} for name, s in scores.items()}


def main(argv: Sequence[str] | None = None) -> None:
    ap = fourq_parser(__doc__, "network_probe")
    ap.add_argument("--network", required=True, help="NAME=PATH of the second network's streaming graph")
    args = ap.parse_args(argv)

    from emotrack.data.cache import load_index, prepare
    from emotrack.data.splits import grouped_kfold
    from emotrack.inference import ModelRunner
    from emotrack.training.features import FeatureCache

    other = register(args.network)
    prepare(args.data_root, args.render_cache, ["4q"])
    clips = load_index(args.render_cache, "4q")
    paths = [c.audio_path for c in clips]
    card = ModelRunner(args.model).card
    means = {}
    for weights in (card.frontend["params"]["weights"], other):
        cache = FeatureCache(args.cache, card.frontend["name"], {**card.frontend["params"], "weights": weights})
        cache.build(paths, workers=args.workers)
        means[weights] = clip_means(cache.load_all(paths))
    folds = grouped_kfold(clips, k=5, seed=0)
    rows = paired_probe(means, clips, folds)
    rows[" + ".join(means) + ", concatenated"] = probe(np.concatenate(list(means.values()), axis=1), clips, folds)
    result = probe_document(argv, __spec__.name, card, clips, rows)
    write_probe(result, args.out, markdown(result))


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Network probe: does a second pretrained musicnn network add to the default's? (linear, artist-grouped "
        "5-fold)",
        "",
        f"`{result['command']}`",
        "",
        f"{result['date']}, {result['machine']['cpu_model']}. A linear probe, **not a shipped file**: multinomial "
        f"logistic regression on each clip's mean frame of {result['model']}'s front end "
        f"({result['frontend']['name']}) computed with each network, {result['clips']} clips of "
        f"{result['artists']} artists, penalty chosen by an artist-grouped inner 4-fold CV inside each training part. "
        "For scale: the default's own CV (the trained model, streamed) is 72.9 %.",
        "",
        "| features | width | 4Q weighted F1 (fold mean ± std) | per fold |",
        "|---|---|---|---|",
    ]
    for name, r in result["rows"].items():
        f1 = f"{100 * r['weighted_f1_mean']:.1f} ± {100 * r['weighted_f1_std']:.1f} %"
        lines.append(f"| {name} | {r['width']} | {f1} | {', '.join(f'{100 * s:.1f}' for s in r['per_fold'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
