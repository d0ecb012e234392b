"""Markdown reports of cross-validation results (the ``<out>/<model>_<datasets>_cv.md`` next to the JSON).

Why a module of its own: the report only reads the CV dict that
:func:`emotrack.training.commands.run_cv` returns, so formatting stays apart from training.
"""

from __future__ import annotations

from typing import Any

__all__ = ["cv_markdown"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _quadrant_markdown(name: str, r: dict[str, Any], best: dict[int, int]) -> list[str]:
    keys = ("weighted_f1", "accuracy", "precision", "recall", "valence_sign_accuracy", "arousal_sign_accuracy")
    lines = [
        "Metrics are sklearn weighted averages over the 4 quadrants, in %, on causal streamed predictions.",
        "",
        "| fold | test clips | best epoch | W-F1 | acc | P | R | V sign acc | A sign acc |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in r["per_fold"]:
        lines.append(f"| {f['fold'] + 1} | {f['n_test']} | {best.get(f['fold'], '')} | "
                     + " | ".join(_pct(f[k]) for k in keys) + " |")
    lines.append("| **mean** | | | " + " | ".join(f"**{_pct(r['mean'][k])}**" for k in keys) + " |")
    lines.append("| std | | | " + " | ".join(_pct(r["std"][k]) for k in keys) + " |")
    lines += [
        "",
        "Pooled confusion matrix (rows = true, columns = predicted):",
        "",
        "| | Q1 | Q2 | Q3 | Q4 |",
        "|---|---|---|---|---|",
        *(f"| Q{i + 1} | " + " | ".join(str(v) for v in row) + " |"
          for i, row in enumerate(r["pooled"]["confusion_matrix"])),
        "",
        f"Majority vote over hops instead of the clip mean: weighted F1 {_pct(r['mean']['vote_weighted_f1'])} "
        "(fold mean).",
    ]
    return lines


def _regression_markdown(r: dict[str, Any]) -> list[str]:
    head = [f"{d} {m.upper()} {s}" for s in ("glob", "piece") for m in ("ccc", "pcc", "rmse") for d in ("V", "A")]
    cells = lambda x: " | ".join(  # noqa: E731
        f"{x[s][f'{d}_{m}']:.3f}" for s in ("global", "per_song") for m in ("ccc", "pcc", "rmse")
        for d in ("valence", "arousal"))
    lines = [
        "RMSE, PCC and Lin's CCC on causal streamed predictions; glob = all hops concatenated, piece = mean over "
        "pieces.",
        "",
        "| fold | test pieces | " + " | ".join(head) + " |",
        "|---|---|" + "---|" * len(head),
    ]
    lines += [f"| {f['fold'] + 1} | {f['n_test']} | {cells(f)} |" for f in r["per_fold"]]
    lines.append(f"| **pooled** | {r['pooled']['per_song'].get('n_songs', '')} | {cells(r['pooled'])} |")
    lines.append(f"| fold mean | | {cells(r['mean'])} |")
    return lines


def cv_markdown(cv: dict[str, Any]) -> str:
    """A short Markdown report of a CV result: per data set fold tables, means, pooled numbers."""
    datasets = cv.get("datasets") or {"4q": {"kind": "quadrant", **cv}}
    best = {f["fold"]: f["best_epoch"] for f in cv["per_fold"]}
    grouped = "artist-grouped" if cv.get("grouping") == "artist" else "grouped"
    lines = [
        f"# {cv.get('model', 'model')} on {cv.get('data', '4q')}: {cv['folds']}-fold {grouped} CV",
        "",
        f"Split: {cv['split']}; epoch selection on {cv['inner_validation']}. Clip rule: {cv['clip_rule']}.",
    ]
    for name, r in datasets.items():
        lines += ["", f"## {name}", ""]
        lines += _quadrant_markdown(name, r, best) if r["kind"] == "quadrant" else _regression_markdown(r)
    lines += [
        "",
        f"Machine: {cv['machine']['cpu']}, {cv['machine']['cores']} cores"
        + (f", {cv['machine']['gpu']}" if cv["machine"].get("gpu") else "")
        + f" (torch {cv['machine']['torch']}, {cv['machine']['torch_threads']} thread); "
        f"training time for all folds {cv['total_train_seconds'] / 60:.1f} min "
        "(wall clock, machine shared with other jobs).",
        "",
        f"Command: `{cv['command']}`",
    ]
    return "\n".join(lines) + "\n"
