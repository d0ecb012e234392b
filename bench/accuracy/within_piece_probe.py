"""Is within-piece arousal capped by the front end or by the training objective? A linear probe on VGMIDI.

Why: the default's per-piece arousal PCC on VGMIDI (0.281, target 0.35) sits at the agreement of half the rater
panel with the other half, and no added input lifted a linear read-out of its front end (``dynamics_probe``).
Two things that probe held fixed could still cap it:

* **the objective**: a global MSE/CCC fit is dominated by the spread of piece means (std 0.247) over the
  movement within a piece (0.063), so it spends the features on telling pieces apart. Per-piece PCC only sees
  the movement. The probe adds a within-piece term to the ridge fit, the linear analogue of a per-sequence PCC
  loss: the training rows once as they are, and once centred on their piece's mean (features and labels), the
  second copy weighted by ``w``. ``w = 0`` is the plain fit, "within only" fits the centred rows alone;
* **the alignment**: raters move a slider while they listen, so labels trail the music, and the front end's
  newest frame describes the music ~1 s before the hop's end. A sweep pairs each label with the features
  ``L`` hops earlier (``L > 0``: the labels lag) or later (``L < 0``: a look-ahead no causal model has).

Scores: per-piece PCC and global CCC, over the piece-grouped test folds (5 folds as ``run_cv``). A probe of
features and objectives, not a shipped file: the rows say whether a per-sequence PCC term in ``emotrack train``
is worth a full CV of the recipe (about 70 min on 2 cores).

Usage::

    python -m bench.accuracy.within_piece_probe --data-root ../shared/data --render-cache /tmp/emocache \\
        --cache /tmp/emo/cache --out bench/results/within_piece_probe.json
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.accuracy.dynamics_probe import (
    CONTEXT_HOPS,
    causal_mean,
    markdown_rows,
    probe_parser,
    probe_result,
    probe_scores,
    vgmidi_frames,
    write_probe,
)

WITHIN_WEIGHTS = (0.0, 1.0, 3.0, 10.0, 30.0)
"""Weights of the piece-centred copy of the training rows (0: the plain fit of ``dynamics_probe``)."""
LAGS = (-8, -4, -2, 0, 2, 4)
"""Label lags in hops (0.5 s each): each label is paired with the features ``L`` hops before it."""


def centred(rows: np.ndarray) -> np.ndarray:
    """``rows`` ``[T, F]`` less their mean over the piece: what a per-piece correlation sees."""
    return rows - rows.mean(axis=0, keepdims=True)


def lagged(x: np.ndarray, y: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair each label with the features ``lag`` hops before it (after it for ``lag < 0``)."""
    if lag > 0:
        return x[:-lag], y[lag:]
    if lag < 0:
        return x[-lag:], y[:lag]
    return x, y


def probe(features: list[np.ndarray], labels: list[np.ndarray], folds: list[tuple[np.ndarray, np.ndarray]],
          alpha: float, within: float | None) -> dict[str, Any]:
    """Piece-grouped ridge per hop with a within-piece term of weight ``within`` (``None``: centred rows only)."""
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    preds: list[np.ndarray | None] = [None] * len(features)
    for train, test in folds:
        x = np.concatenate([features[i] for i in train])
        scaler = StandardScaler().fit(x)
        xs = [scaler.transform(features[i]) for i in train]
        ys = [labels[i] for i in train]
        y_mean = np.concatenate(ys).mean(axis=0)
        xc, yc = [centred(a) for a in xs], [centred(b) for b in ys]
        # The features are centred over the training rows, so the intercept is the labels' mean; fitting it on
        # the stacked rows would pull it toward the centred copy's zero.
        if within is None:
            fit_x, fit_y = np.concatenate(xc), np.concatenate(yc)
        else:
            k = np.sqrt(within)
            fit_x = np.concatenate([*xs, *(k * a for a in xc if k)])
            fit_y = np.concatenate([*(b - y_mean for b in ys), *(k * b for b in yc if k)])
        model = Ridge(alpha=alpha, fit_intercept=False).fit(fit_x, fit_y)
        for i in test:
            preds[i] = model.predict(scaler.transform(features[i])) + y_mean
    return probe_scores(preds, labels)


def main(argv: Sequence[str] | None = None) -> None:
    ap = probe_parser(__doc__.splitlines()[0], "bench/results/within_piece_probe.json")
    args = ap.parse_args(argv)

    from emotrack.data.splits import grouped_kfold

    clips, card, labels, raw, _ = vgmidi_frames(args.data_root, args.render_cache, args.cache, args.model,
                                                args.workers)
    frontend = [causal_mean(f, CONTEXT_HOPS) for f in raw]
    folds = grouped_kfold(clips, k=5, seed=0)
    rows: dict[str, dict[str, Any]] = {}
    for w in WITHIN_WEIGHTS:
        rows[f"within weight {w:g}, lag 0"] = probe(frontend, labels, folds, args.alpha, w)
    rows["within only, lag 0"] = probe(frontend, labels, folds, args.alpha, None)
    for lag in LAGS:
        if lag == 0:
            continue
        pairs = [lagged(x, y, lag) for x, y in zip(frontend, labels, strict=True)]
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        for w in (0.0, 3.0, None):
            fit = "within only" if w is None else f"within weight {w:g}"
            rows[f"{fit}, lag {lag:+d} ({lag / 2:+g} s)"] = probe(xs, ys, folds, args.alpha, w)
    result = probe_result(__spec__.name, argv, card, clips, labels, args.alpha, context_hops=CONTEXT_HOPS,
                          rows=rows)
    write_probe(result, args.out, markdown(result))


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Within-piece probe: objective and label lag on VGMIDI (linear, piece-grouped 5-fold)",
        "",
        f"`{result['command']}`",
        "",
        f"{result['date']}, {result['machine']['cpu_model']}. A linear probe, **not a shipped file**: ridge per hop "
        f"(alpha {result['alpha']}) on the causal {result['context_hops'] / 2:g} s mean of the front-end frames of "
        f"{result['model']}, {result['clips']} clips of {result['pieces']} pieces ({result['hops']} hops). "
        "Within weight: how much a piece-centred copy of the training rows counts (0: plain fit). Lag L: each "
        "label paired with the features L hops before it (L < 0 looks ahead).",
        "",
        *markdown_rows(result["rows"], "fit"),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
