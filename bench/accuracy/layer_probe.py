"""Is 4Q capped by the musicnn layer the default reads? A linear probe of clip-level features, before any training.

Why: every recipe of the default since 0.3.0 lands at 70.8-73.1 % weighted F1 on 4Q per seed and 72.5-73.4 % for
any seed ensemble (``bench/results/ensemble_forecast.md``), short of issue 14's 74 %; the pooled confusion is mostly
Q3 against Q4 (valence at low arousal). The default reads musicnn's 200-unit penultimate layer (of the newest 2.9 s
and 1 s) plus chroma and key clarity. musicnn computes that layer from 1,506 pooled statistics (each of its 753
front-end and mid-end channels' max and mean over the window) and then its 50 tag probabilities (moods among
them). If a wider layer held what 4Q's quadrants need, a linear read-out of it would show it first.

Rows (each clip: the mean over its hops of the hop's vector, as the clip rule averages the model's hops):

* ``default frame``: the default's own front-end frame (:class:`~emotrack.frontends.musicnn_tonal.MusicnnTonal`);
* ``penultimate``, ``taggram``, ``max_pool``, ``mean_pool``, ``max + mean pool``: the 2.9 s window's layers
  (:class:`~emotrack.frontends.musicnn.Musicnn`); ``penultimate`` and ``taggram`` are computed from the pooled
  statistics with musicnn's own back end, as the front end does;
* the default frame with each wider layer beside it.

Scores: multinomial logistic regression on standardised features, artist-grouped stratified 5-fold CV
(``grouped_kfold``, seed 0); its penalty is chosen inside each training part by an artist-grouped inner 4-fold
CV, so the test folds choose nothing. Weighted F1 as ``emotrack train`` reports it (fold mean ± std). A probe of
features, not a shipped file: a row well above ``default frame`` says a front-end change is worth a full CV of
the recipe (about 2 h on 2 cores); rows at or below it say the layer is not what caps 4Q.

Usage::

    python -m bench.accuracy.layer_probe --data-root ../shared/data --render-cache /tmp/emocache \\
        --cache /tmp/emo/cache --out bench/results/layer_probe.json
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from bench.accuracy.dynamics_probe import write_probe
from bench.common import command_line, machine

PENALTIES = np.logspace(-3, 1, 9)
"""Inverse regularisation strengths the inner CV chooses from (on standardised features)."""


def clip_means(frames: Sequence[np.ndarray]) -> np.ndarray:
    """``[n_clips, F]``: each clip's mean frame over its hops (the clip rule averages hops the same way)."""
    return np.stack([np.asarray(f, np.float64).reshape(len(f), -1).mean(axis=0) for f in frames])


def fourq_layers(data_root: str, render_cache: str, cache_dir: str, model: str, workers: int) -> tuple[
        list[Any], Any, dict[str, np.ndarray]]:
    """4Q's clips, the model card, and per layer the clips' mean vectors ``[n_clips, F]`` (cached per clip)."""
    from emotrack.data.cache import load_index, prepare
    from emotrack.frontends.musicnn import embed, load_network
    from emotrack.inference import ModelRunner
    from emotrack.training.features import FeatureCache

    prepare(data_root, render_cache, ["4q"])
    clips = load_index(render_cache, "4q")
    paths = [c.audio_path for c in clips]
    card = ModelRunner(model).card
    # One cache of every hop's pooled statistics; every other musicnn layer follows from them through embed.
    caches = {"pooled": FeatureCache(cache_dir, "musicnn", {"layer": "pooled"}),
              "default frame": FeatureCache(cache_dir, card.frontend["name"], card.frontend["params"])}
    for cache in caches.values():
        cache.build(paths, workers=workers)
    pooled = caches["pooled"].load_all(paths)
    layers = {"default frame": clip_means(caches["default frame"].load_all(paths))}
    _, backend = load_network("msd")
    for layer in ("penultimate", "taggram", "max_pool", "mean_pool"):
        # The back end is not linear: embed every hop's pooled statistics, then average over the clip.
        layers[layer] = clip_means([embed(p, backend, layer) for p in pooled])
    layers["max + mean pool"] = np.concatenate([layers["max_pool"], layers["mean_pool"]], axis=1)
    for layer in ("taggram", "max + mean pool"):
        layers[f"default frame + {layer}"] = np.concatenate([layers["default frame"], layers[layer]], axis=1)
    return clips, card, layers


def fit_readout(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int = 0,
                scored: np.ndarray | None = None) -> Any:
    """A standardised logistic read-out of ``x`` whose penalty an artist-grouped inner 4-fold CV chooses
    (weighted F1); ``scored`` (a mask, default all) marks the rows the inner folds may score."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scored = np.ones(len(x), bool) if scored is None else scored
    inner = StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=seed)
    splits = [(tr, te[scored[te]]) for tr, te in inner.split(x, y, groups)]
    search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
                          {"logisticregression__C": PENALTIES}, scoring="f1_weighted", cv=splits)
    return search.fit(x, y)


def probe(x: np.ndarray, clips: Sequence[Any], folds: Sequence[tuple[np.ndarray, np.ndarray]],
          seed: int = 0, copies: Sequence[np.ndarray] = ()) -> dict[str, Any]:
    """Artist-grouped CV of a logistic read-out of ``x``; the penalty is chosen by a grouped inner CV.

    ``copies`` (each ``[n_clips, F]`` like ``x``, e.g. pitch-shifted clips' vectors) join every training part
    with their clip's label and artist; the inner folds and the tests score originals only.
    """
    from emotrack.training.metrics import classification_metrics

    y = np.array([c.quadrant for c in clips])
    groups = np.array([c.group for c in clips])
    scores, chosen = [], []
    for train, test in folds:
        x_train = np.concatenate([x[train], *(c[train] for c in copies)])
        y_train, g_train = np.tile(y[train], 1 + len(copies)), np.tile(groups[train], 1 + len(copies))
        search = fit_readout(x_train, y_train, g_train, seed, scored=np.arange(len(x_train)) < len(train))
        scores.append(classification_metrics(y[test], search.predict(x[test]))["weighted_f1"])
        chosen.append(float(search.best_params_["logisticregression__C"]))
    return {"weighted_f1_mean": float(np.mean(scores)), "weighted_f1_std": float(np.std(scores)),
            "per_fold": [round(s, 4) for s in scores], "chosen_C": chosen, "width": int(x.shape[1])}


def probe_document(argv: Sequence[str] | None, module: str, card: Any, clips: Sequence[Any],
                   rows: dict[str, Any]) -> dict[str, Any]:
    """A 4Q probe's result file: its command, date, machine, the model whose front end was read, the rows."""
    return {
        "command": command_line() if argv is None else shlex.join(["python", "-m", module, *argv]),
        "date": date.today().isoformat(), "machine": machine(), "model": card.model_id,
        "frontend": card.frontend, "clips": len(clips), "artists": len({c.group for c in clips}), "rows": rows,
    }


def fourq_parser(doc: str, name: str) -> argparse.ArgumentParser:
    """The options every 4Q probe takes (data, caches, the model whose front end is read, ``--out``), its
    description the first line of ``doc`` and its result ``bench/results/<name>.json`` by default."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--render-cache", required=True, help="where the 4Q clip index is (or goes)")
    ap.add_argument("--cache", required=True, help="the front-end feature cache")
    ap.add_argument("--model", default="mca-musicnn", help="whose front-end frame is read")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(f"bench/results/{name}.json"))
    return ap


def main(argv: Sequence[str] | None = None) -> None:
    args = fourq_parser(__doc__, "layer_probe").parse_args(argv)

    from emotrack.data.splits import grouped_kfold

    clips, card, layers = fourq_layers(args.data_root, args.render_cache, args.cache, args.model, args.workers)
    folds = grouped_kfold(clips, k=5, seed=0)
    rows = {name: probe(x, clips, folds) for name, x in layers.items()}
    result = probe_document(argv, __spec__.name, card, clips, rows)
    write_probe(result, args.out, markdown(result))


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Layer probe: which musicnn layer holds 4Q's quadrants (linear, artist-grouped 5-fold)",
        "",
        f"`{result['command']}`",
        "",
        f"{result['date']}, {result['machine']['cpu_model']}. A linear probe, **not a shipped file**: multinomial "
        f"logistic regression on each clip's mean vector, {result['clips']} clips of {result['artists']} artists, "
        "penalty chosen by an artist-grouped inner 4-fold CV inside each training part. `default frame` is the "
        f"front-end frame of {result['model']} ({result['frontend']['name']}); the other layers are musicnn's over "
        "the newest 2.9 s. For scale: the default's own CV (the trained model, streamed) is 72.9 %.",
        "",
        "| features | width | 4Q weighted F1 (fold mean ± std) | penalties chosen (C) |",
        "|---|---|---|---|",
    ]
    for name, r in result["rows"].items():
        cs = ", ".join(f"{c:g}" for c in r["chosen_C"])
        f1 = f"{100 * r['weighted_f1_mean']:.1f} ± {100 * r['weighted_f1_std']:.1f} %"
        lines.append(f"| {name} | {r['width']} | {f1} | {cs} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
