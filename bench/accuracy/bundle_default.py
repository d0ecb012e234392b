"""Bundle a trained default: name, version and the card metrics measured for it, then export and parity-check.

The card of the shipped file must carry the numbers measured *for that file's recipe and file* (``emotrack
models`` shows them), so they are assembled here from the committed result files rather than typed in:

* the recipe's CV (``--cv``: the ``*_cv.json`` of ``emotrack train --folds 5``): 4Q, VGMIDI, EMOPIA fold models;
* ``bench/accuracy/default_checks.json``: calibration, EMOPIA val of this file, the "no music" cases;
* ``bench/results/response.json``: medley response of the recipe's fold models (first ``--cv-run`` there).

    python -m bench.accuracy.bundle_default /tmp/runs/finE/final_best.pt --version 0.6.0 \\
        --cv bench/accuracy/mca-musicnn-default_4q_vgmidi_emopia_cv.json

Run it once before the checks (they need the bundled file) with ``--no-checks``, then again after them.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

from emotrack.assets import ASSETS
from emotrack.export.onnx import export_onnx
from emotrack.training.card_text import card_metrics
from emotrack.training.checkpoint import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]
NAME = "mca-musicnn"


def checks_metrics(checks: dict[str, Any], response: dict[str, Any] | None) -> dict[str, Any]:
    """The card entries from ``default_checks.json`` and ``response.json`` (the default recipe's rows)."""
    out: dict[str, Any] = {}
    e = checks["emopia_val_bundled"]
    out["emopia_val_file"] = {"weighted_f1": e["weighted_f1"], "accuracy": e["accuracy"], "n_clips": e["n_clips"],
                              "what": "this file on EMOPIA's official val songs (never trained on)"}
    c = checks["calibration_vgmidi_cv"]
    out["vgmidi_spread_ratio"] = {"valence": c["valence"]["raw_std_ratio"], "arousal": c["arousal"]["raw_std_ratio"],
                                  "what": "per-hop output std / label std, fold models of this recipe"}
    out["no_music_inactive"] = {k: v["inactive_share"] for k, v in checks["nonmusic_bundled"].items()}
    if response:
        rows = response["results"]["4q"]
        label = next(k.split(" | ")[0] for k in rows if "(CV fold model)" in k)
        out["medley_response_4q"] = {
            kind: {axis: {"median_s": m["median_s"], "caught_within_10s": m["caught_within_10s"]}
                   for axis, m in rows[f"{label} | {kind}"].items()}
            for kind in ("raw", "smoothed")}
        out["medley_response_4q"]["what"] = "bench/response.py, fold models of this recipe, unseen 4Q medleys"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path, help="final_best.pt of emotrack train --final")
    ap.add_argument("--version", required=True)
    ap.add_argument("--cv", type=Path, required=True, help="the recipe's CV result (*_cv.json)")
    ap.add_argument("--checks", type=Path, default=ROOT / "bench" / "accuracy" / "default_checks.json")
    ap.add_argument("--response", type=Path, default=ROOT / "bench" / "results" / "response.json")
    ap.add_argument("--no-checks", action="store_true", help="only the CV metrics (before the checks have run)")
    args = ap.parse_args()

    model, card, payload = load_checkpoint(args.checkpoint)
    card = copy.deepcopy(card)
    card.name, card.version = NAME, args.version
    card.metrics = card_metrics(json.loads(args.cv.read_text()))
    if not args.no_checks:
        card.metrics.update(checks_metrics(json.loads(args.checks.read_text()), json.loads(args.response.read_text())))
    save_checkpoint(ASSETS / "checkpoints" / f"{NAME}.pt", payload["model"], payload["kwargs"], model, card)
    print(export_onnx(model, card, ASSETS / "models" / f"{NAME}.onnx"))


if __name__ == "__main__":
    main()
