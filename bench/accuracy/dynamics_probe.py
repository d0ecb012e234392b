"""Would a gain-free dynamics input help within-piece arousal? A linear probe on VGMIDI, before any training.

Why: the default's front end (``musicnn_tonal``) is level-free by design (a performer's input gain is arbitrary),
and its per-piece arousal PCC on VGMIDI (0.281) is no higher than a plain 3 s loudness meter's (0.289). Absolute
level cannot go into a live model (it is the input gain), but level *relative to the piece so far* can: the
newest seconds against a slow running level is the same at any gain. This probe asks, with the cheapest model
that can answer (piece-grouped ridge regression per hop, 5 folds as ``run_cv``), whether such relative levels add
within-piece information to the front end's own features:

* ``frontend``: the default's front-end frame (musicnn embeddings + tonal statistics), causal 10 s mean, as the
  probe that chose ``musicnn_tonal`` (``bench/findings.md``);
* ``+ relative level``: plus :func:`relative_levels` (gain-free);
* ``relative level`` alone, and the absolute 3 s level (``zoo_bench``'s loudness baseline, not gain-free) for
  reference;
* the front end over other context lengths (0.5, 3 and 20 s), since a 10 s mean could blur what changes.

Scores: per-piece PCC and global CCC on arousal and valence, over the test folds. A probe, not a shipped file: the
rows say whether a front-end change is worth a full CV of the recipe (about 2 h on 2 cores).

Usage::

    python -m bench.accuracy.dynamics_probe --data-root ../shared/data --render-cache /tmp/emocache \\
        --cache /tmp/emo/cache --out bench/results/dynamics_probe.json
"""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from bench.accuracy.zoo_bench import LOUDNESS_WINDOW_HOPS, wav_levels
from bench.common import command_line, machine
from emotrack.training.metrics import regression_metrics

RELATIVE_WINDOWS = (1, 2, 6)
"""Newest-level windows in hops (0.5, 1 and 3 s) for :func:`relative_levels`."""
RUNNING_HOPS = 60
"""The slow running level: the newest 30 s (fewer at a piece's start)."""
CONTEXT_HOPS = 20
"""Causal mean of the front-end frames: the newest 10 s, the default's longest window."""
CONTEXT_SWEEP = (1, 6, 40)
"""Other causal means, in hops (0.5, 3 and 20 s): does a shorter or longer context follow a piece better?"""


def causal_mean(x: np.ndarray, hops: int) -> np.ndarray:
    """Mean of the newest ``hops`` rows at each row of ``x`` ``[T, F]`` (fewer at the start)."""
    x = np.asarray(x, np.float64)
    csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - hops, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)[:, None]


def vgmidi_frames(data_root: str, render_cache: str, cache_dir: str, model: str, workers: int) -> tuple[
        list[Any], Any, list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """VGMIDI's labelled renders with ``model``'s front-end frames, cut to a common length per clip.

    Returns ``(clips, card, labels, frames, powers)``: per clip the labels ``[T, 2]`` (valence, arousal), the
    front-end frames ``[T, F]`` and each hop's own level in dB ``[T]``. Renders and frames are built once into
    their caches.
    """
    from emotrack.data.cache import load_index, prepare
    from emotrack.inference import ModelRunner
    from emotrack.training.features import FeatureCache

    prepare(data_root, render_cache, ["vgmidi"])
    clips = [c for c in load_index(render_cache, "vgmidi") if c.valence is not None]
    card = ModelRunner(model).card
    cache = FeatureCache(cache_dir, card.frontend["name"], card.frontend["params"])
    cache.build([c.audio_path for c in clips], workers=workers)
    labels, frames, powers = [], [], []
    for c, power in zip(clips, wav_levels(clips, window=1), strict=True):
        f = cache.load(c.audio_path).reshape(-1, int(np.prod(cache.frame_shape)))
        n = min(len(f), len(power), c.n_labels)
        labels.append(np.stack([c.valence[:n], c.arousal[:n]], axis=1))
        frames.append(f[:n])
        powers.append(np.asarray(power[:n]))
    return clips, card, labels, frames, powers


def relative_levels(hop_power_db: np.ndarray, windows: Sequence[int] = RELATIVE_WINDOWS,
                    running: int = RUNNING_HOPS) -> np.ndarray:
    """Gain-free dynamics per hop ``[T, len(windows) + 1]``: newest levels against the slow running level, in dB.

    ``hop_power_db`` is each hop's own mean power in dB. Columns: the level over the newest ``w`` hops minus the
    level over the newest ``running`` hops, for each ``w``; then the spread (std, dB) of the hop levels over the
    running window, which says whether the piece has dynamics at all. A constant gain shifts every level alike,
    so every column is unchanged by it.
    """
    power = 10 ** (np.asarray(hop_power_db, np.float64) / 10)
    power = power[:, None]
    slow = 10 * np.log10(causal_mean(power, running)[:, 0] + 1e-10)
    cols = [10 * np.log10(causal_mean(power, w)[:, 0] + 1e-10) - slow for w in windows]
    db = np.asarray(hop_power_db, np.float64)[:, None]
    spread = np.sqrt(np.maximum(causal_mean(db**2, running) - causal_mean(db, running) ** 2, 0.0))[:, 0]
    return np.stack([*cols, spread], axis=1)


def probe(features: list[np.ndarray], labels: list[np.ndarray], folds: list[tuple[np.ndarray, np.ndarray]],
          alpha: float) -> dict[str, Any]:
    """Piece-grouped ridge per hop: fit on each fold's training pieces, predict its test pieces; score all."""
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    preds: list[np.ndarray | None] = [None] * len(features)
    for train, test in folds:
        x = np.concatenate([features[i] for i in train])
        y = np.concatenate([labels[i] for i in train])
        keep = ~np.isnan(y).any(axis=1)
        scaler = StandardScaler().fit(x[keep])
        model = Ridge(alpha=alpha).fit(scaler.transform(x[keep]), y[keep])
        for i in test:
            preds[i] = model.predict(scaler.transform(features[i]))
    return probe_scores(preds, labels)


def probe_scores(preds: Sequence[np.ndarray | None], labels: Sequence[np.ndarray]) -> dict[str, float]:
    """A probe row: per-piece PCC and global CCC of both axes over the test folds' predictions."""
    m = regression_metrics(preds, labels)
    return {
        "per_piece_pcc_arousal": m["per_song"]["arousal_pcc"], "per_piece_pcc_valence": m["per_song"]["valence_pcc"],
        "global_ccc_arousal": m["global"]["arousal_ccc"], "global_ccc_valence": m["global"]["valence_ccc"],
    }


def probe_parser(description: str, out: str) -> argparse.ArgumentParser:
    """The options every VGMIDI probe takes (data, caches, whose front end, ridge penalty, where to write)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--render-cache", required=True, help="where VGMIDI's renders are (or go)")
    ap.add_argument("--cache", required=True, help="the front-end feature cache")
    ap.add_argument("--model", default="mca-musicnn", help="whose front end to probe (its card's settings)")
    ap.add_argument("--alpha", type=float, default=100.0, help="ridge penalty (on standardised features)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(out))
    return ap


def probe_result(module: str, argv: Sequence[str] | None, card: Any, clips: Sequence[Any],
                 labels: Sequence[np.ndarray], alpha: float, **fields: Any) -> dict[str, Any]:
    """A probe's JSON: how it was run, on what, then ``fields`` (its settings and ``rows``)."""
    return {
        "command": command_line() if argv is None else shlex.join(["python", "-m", module, *argv]),
        "date": date.today().isoformat(), "machine": machine(), "model": f"{card.model_id} {card.version}",
        "frontend": card.frontend, "pieces": len({c.group for c in clips}), "clips": len(clips),
        "hops": int(sum(len(y) for y in labels)), "alpha": alpha, **fields,
    }


def write_probe(result: dict[str, Any], out: Path, table: str) -> None:
    """Write ``result`` to ``out`` (JSON) and ``table`` beside it (``.md``), and print the table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(table)
    print(table)


def markdown_rows(rows: dict[str, dict[str, float]], first: str) -> list[str]:
    """The probe's table: one line per row of scores, ``first`` naming the first column."""
    lines = [f"| {first} | per-piece PCC A | per-piece PCC V | global CCC A | global CCC V |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['per_piece_pcc_arousal']:.3f} | {r['per_piece_pcc_valence']:.3f} | "
                     f"{r['global_ccc_arousal']:.3f} | {r['global_ccc_valence']:.3f} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    ap = probe_parser(__doc__.splitlines()[0], "bench/results/dynamics_probe.json")
    args = ap.parse_args(argv)

    from emotrack.data.splits import grouped_kfold

    clips, card, labels, raw, powers = vgmidi_frames(args.data_root, args.render_cache, args.cache, args.model,
                                                     args.workers)
    frontend, relative, absolute = [], [], []
    for frames, power in zip(raw, powers, strict=True):
        frontend.append(causal_mean(frames, CONTEXT_HOPS))
        relative.append(relative_levels(power))
        level = 10 * np.log10(causal_mean(10 ** (power[:, None] / 10), LOUDNESS_WINDOW_HOPS) + 1e-10)
        absolute.append(level)
    folds = grouped_kfold(clips, k=5, seed=0)
    sets = {
        "frontend (10 s mean)": frontend,
        "frontend + relative level": [np.hstack(p) for p in zip(frontend, relative, strict=True)],
        "relative level alone (gain-free)": relative,
        "absolute 3 s level alone (not gain-free)": absolute,
        "frontend + absolute 3 s level (not gain-free)": [np.hstack(p) for p in zip(frontend, absolute, strict=True)],
    }
    for hops in CONTEXT_SWEEP:
        sets[f"frontend ({hops / 2:g} s mean)"] = [causal_mean(f, hops) for f in raw]
    rows = {name: probe(x, labels, folds, args.alpha) for name, x in sets.items()}
    result = probe_result(__spec__.name, argv, card, clips, labels, args.alpha,
                          relative_windows_hops=RELATIVE_WINDOWS, running_hops=RUNNING_HOPS, rows=rows)
    write_probe(result, args.out, markdown(result))


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Dynamics probe: gain-free relative level on VGMIDI (linear, piece-grouped 5-fold)",
        "",
        f"`{result['command']}`",
        "",
        f"{result['date']}, {result['machine']['cpu_model']}. A linear probe of features, **not a shipped file**: "
        f"ridge per hop (alpha {result['alpha']}) on {result['clips']} clips of {result['pieces']} pieces "
        f"({result['hops']} hops), front end of {result['model']}.",
        "",
        *markdown_rows(result["rows"], "features"),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
