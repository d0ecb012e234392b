"""The 4Q and EMOPIA CV scores a seed ensemble would get, from its members' committed CV files alone.

A seed ensemble (``emotrack train --ensemble``) averages its members' per-hop outputs, and a clip's quadrant is
the quadrant of the mean of its streamed (valence, arousal) over all hops. The mean of an average is the
average of the means, so the ensemble's clip quadrants, and with them its per-fold weighted F1, follow exactly
from each member's per-clip ``mean_va`` (stored in the CV JSON, rounded to 4 decimals) when the members share
folds. That answers "is one more seed worth its training?" before any checkpoint exists. VGMIDI's per-hop
metrics and the medley response times do not follow this way: they need the members' fold models.

``--check ENSEMBLE_JSON`` compares the derived numbers with an ensemble's own CV file (the 0.5.0 and 0.6.0
defaults' against their two members: they agree to the last digit). ``--all-subsets`` scores every subset of
the given runs and writes ``bench/results/ensemble_forecast.{json,md}``.

    python -m bench.accuracy.ensemble_forecast \\
        bench/accuracy/mca-musicnn-default-pcc_4q_vgmidi_emopia_cv.json \\
        bench/accuracy/mca-musicnn-default-pcc-s1_4q_vgmidi_emopia_cv.json \\
        --check bench/accuracy/mca-musicnn-default_4q_vgmidi_emopia_cv.json
    python -m bench.accuracy.ensemble_forecast --all-subsets \\
        bench/accuracy/mca-musicnn-default-{0.4,s1,b,a,0.3}_4q_vgmidi_emopia_cv.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.common import save
from emotrack.training.metrics import classification_metrics, quadrant_of

QUADRANT_SETS = ("4q", "emopia")


def load_clips(path: Path) -> dict[tuple[str, int, str], dict]:
    """``(dataset, fold, id) -> clip`` of one CV file; a clear error when it holds no per-clip results."""
    clips = json.loads(path.read_text()).get("clips")
    if not clips:
        raise SystemExit(f"error: {path} has no per-clip results ('clips'): not a CV file of emotrack train")
    return {(c["dataset"], c["fold"], c["id"]): c for c in clips}


def fold_scores(members: list[dict[tuple[str, int, str], dict]]) -> dict[str, list[float]]:
    """Per data set, each fold's weighted F1 of the members' averaged clip means."""
    keys = set(members[0])
    for m in members[1:]:
        if set(m) != keys:
            raise SystemExit("error: the CV files do not hold the same clips and folds (different splits?)")
    by_fold: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    for key in sorted(keys):
        dataset, fold, _ = key
        va = np.mean([m[key]["mean_va"] for m in members], axis=0)
        by_fold[dataset, fold].append((members[0][key]["quadrant"], int(quadrant_of(va))))
    out: dict[str, list[float]] = defaultdict(list)
    for (dataset, _), pairs in sorted(by_fold.items()):
        truth, pred = zip(*pairs, strict=True)
        out[dataset].append(classification_metrics(truth, pred)["weighted_f1"])
    return dict(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members", nargs="+", type=Path, help="the members' CV JSON files (same folds)")
    parser.add_argument("--check", type=Path, help="an ensemble's own CV JSON to compare with")
    parser.add_argument("--all-subsets", action="store_true",
                        help="score every subset of the members, and write bench/results/ensemble_forecast.{json,md}")
    args = parser.parse_args(argv)
    for path in [*args.members, *([args.check] if args.check else [])]:
        if not path.is_file():
            print(f"error: no such file: {path}", file=sys.stderr)
            return 2
    clips = {p.name: load_clips(p) for p in args.members}
    check = json.loads(args.check.read_text())["datasets"] if args.check else {}
    sizes = range(1, len(clips) + 1) if args.all_subsets else [len(clips)]
    rows = []
    for size in sizes:
        for names in itertools.combinations(clips, size):
            scores = fold_scores([clips[n] for n in names])
            rows.append({"members": list(names), **{
                d: {"weighted_f1_fold_mean": round(float(np.mean(f)), 4), "std": round(float(np.std(f)), 4)}
                for d, f in scores.items() if d in QUADRANT_SETS}})
    for row in rows:
        parts = [f"{d} {100 * row[d]['weighted_f1_fold_mean']:.2f} % ± {100 * row[d]['std']:.2f}"
                 for d in QUADRANT_SETS if d in row]
        print(" + ".join(row["members"]) + ": " + ", ".join(parts))
    for d in QUADRANT_SETS:
        if d in check:
            print(f"{d}, the ensemble's own file ({args.check.name}): {100 * check[d]['mean']['weighted_f1']:.2f} %")
    if args.all_subsets:
        path = save("ensemble_forecast", {"rows": rows})
        path.with_suffix(".md").write_text(markdown(json.loads(path.read_text())))
    return 0


def markdown(payload: dict) -> str:
    """The subsets table, best 4Q first."""
    rows = sorted(payload["rows"], key=lambda r: -r["4q"]["weighted_f1_fold_mean"])
    lines = [
        "# Seed-ensemble forecast from committed CV files (4Q / EMOPIA clip rule; exact, no checkpoints)",
        "",
        f"`{payload['command']}` ({payload['machine']['cpu_model']}, {payload['utc']}). A forecast of runs that"
        " were never trained as ensembles (except the 0.5.0 default's pair), scored on the CV test folds: for"
        " planning only, not a shipped file's numbers, and not a way to pick members.",
        "",
        "| members | n | 4Q weighted F1 (fold mean ± std) | EMOPIA val weighted F1 (fold models) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        names = " + ".join(m.removeprefix("mca-musicnn-default").removesuffix("_4q_vgmidi_emopia_cv.json").lstrip("-")
                           or "(0.5.0)"
                           for m in r["members"])
        emopia = f"{100 * r['emopia']['weighted_f1_fold_mean']:.1f} %" if "emopia" in r else ""
        lines.append(f"| {names} | {len(r['members'])} | {100 * r['4q']['weighted_f1_fold_mean']:.1f} ± "
                     f"{100 * r['4q']['std']:.1f} % | {emopia} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
