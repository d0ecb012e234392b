"""How well VGMIDI's own raters agree with each other within a piece: the reference for the per-piece targets.

Issue 14 asks the default for a per-piece arousal PCC of at least 0.35 against the mean of each piece's
~30 raters. This script measures, on the labels alone (no model, no audio), what people reach on the same
scale and grid (the hop grid the models are scored on, measures placed as in :func:`load_vgmidi`):

* **half vs half**: each piece's raters split at random into two halves (20 splits), the per-piece PCC
  between the two half-panel means, averaged over pieces; CCC of the pooled hops beside it;
* **one vs rest**: one rater against the mean of the others (what a single listener reaches);
* **consensus ceiling**: the PCC a perfect predictor of the infinite-panel consensus would have with the
  observed panel mean, ``sqrt(reliability)``, the reliability of the full panel from the half-panel PCC by
  Spearman-Brown (``2r / (1 + r)``, pieces with ``r <= 0`` count 0);
* the within-piece spread of the panel mean beside the spread of the piece means.

    python -m bench.accuracy.vgmidi_agreement --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench.common import save
from emotrack.data.vgmidi import load_vgmidi
from emotrack.training.metrics import ccc, pcc

DIMENSIONS = ("valence", "arousal")


def half_means(r: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The mean series of a random half of the raters ``r`` (``[raters, T]``) and of the other half."""
    order = rng.permutation(len(r))
    return r[order[: len(r) // 2]].mean(0), r[order[len(r) // 2 :]].mean(0)


def agreement(series: list[np.ndarray], splits: int, rng: np.random.Generator) -> dict[str, float]:
    """Per-piece agreement of one dimension: ``series`` holds each rater's ``[T]`` series of one piece."""
    r = np.stack(series).astype(np.float64)
    half = float(np.mean([pcc(*half_means(r, rng)) for _ in range(splits)]))
    rest = [np.delete(r, i, axis=0).mean(0) for i in range(len(r))]
    reliability = 2 * half / (1 + half) if half > 0 else 0.0
    return {
        "half_vs_half_pcc": half,
        "one_vs_rest_pcc": float(np.mean([pcc(r[i], rest[i]) for i in range(len(r))])),
        "one_vs_rest_ccc": float(np.mean([ccc(r[i], rest[i]) for i in range(len(r))])),
        "consensus_ceiling_pcc": float(np.sqrt(reliability)),
        "panel_std_within": float(r.mean(0).std()),
    }


def pooled_half_ccc(pieces: list[list[np.ndarray]], rng: np.random.Generator) -> float:
    """CCC of two half-panel means over all pieces' hops pooled (the scale of the models' global CCC)."""
    a, b = zip(*(half_means(np.stack(series).astype(np.float64), rng) for series in pieces), strict=True)
    return ccc(np.concatenate(a), np.concatenate(b))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data", help="folder holding vgmidi/")
    parser.add_argument("--splits", type=int, default=20, help="random half splits per piece (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (Path(args.data_root) / "vgmidi").is_dir():
        print(f"error: no vgmidi/ under {args.data_root}", file=sys.stderr)
        return 2
    panels = [c.annotators for c in load_vgmidi(args.data_root, None, progress=False) if len(c.annotators) >= 2]
    rng = np.random.default_rng(args.seed)
    out: dict[str, dict[str, float]] = {}
    for d, dim in enumerate(DIMENSIONS):
        pieces = [[s[d] for s in panel] for panel in panels]
        rows = [agreement(p, args.splits, rng) for p in pieces]
        out[dim] = {k: round(float(np.mean([row[k] for row in rows])), 4) for k in rows[0]}
        out[dim]["piece_means_std"] = round(float(np.std([np.stack(p).mean() for p in pieces])), 4)
        out[dim]["half_vs_half_global_ccc"] = round(float(np.mean([pooled_half_ccc(pieces, rng) for _ in range(5)])), 4)
    payload = {"pieces": len(panels), "raters_median": float(np.median([len(p) for p in panels])),
               "splits": args.splits, "agreement": out}
    path = save("vgmidi_agreement", payload)
    path.with_suffix(".md").write_text(markdown(json.loads(path.read_text())))
    return 0


def markdown(payload: dict) -> str:
    """The agreement table, valence and arousal side by side."""
    a = payload["agreement"]
    rows = [
        ("half vs half (per-piece PCC)", "half_vs_half_pcc"),
        ("one rater vs the rest (per-piece PCC)", "one_vs_rest_pcc"),
        ("one rater vs the rest (per-piece CCC)", "one_vs_rest_ccc"),
        ("consensus ceiling (per-piece PCC)", "consensus_ceiling_pcc"),
        ("half vs half (global CCC, pooled hops)", "half_vs_half_global_ccc"),
        ("std of the panel mean within a piece", "panel_std_within"),
        ("std of the piece means", "piece_means_std"),
    ]
    lines = [
        "# VGMIDI: how the raters agree within a piece",
        "",
        f"`{payload['command']}` ({payload['machine']['cpu_model']}, {payload['utc']}); labels only, "
        f"{payload['pieces']} pieces, median {payload['raters_median']:.0f} raters, on the 0.5 s hop grid the "
        "models are scored on. See the script's docstring for each row.",
        "",
        "| | valence | arousal |",
        "|---|---|---|",
        *(f"| {label} | {a['valence'][k]:.3f} | {a['arousal'][k]:.3f} |" for label, k in rows),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
