"""Assemble ``bench/results/accuracy.json`` and the tables of ``accuracy.md`` from the per-run JSON files.

Why generated: the numbers come from many runs (one ``emotrack train`` CV per model, plus the baseline and
cross-data-set runs of :mod:`bench.accuracy.zoo_bench`); regenerating the tables from those files keeps
every row tied to the JSON (and command) it came from. The prose notes live in ``NOTES`` below.

Usage: ``python -m bench.accuracy.report`` (reads ``bench/accuracy/*_4q_cv.json``,
``bench/results/accuracy_parts/*.json`` and the hand-written prose ``bench/accuracy/notes.md``; writes
``bench/results/accuracy.md`` and ``accuracy.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CV_DIR = ROOT / "bench" / "accuracy"
PARTS = ROOT / "bench" / "results" / "accuracy_parts"
OUT = ROOT / "bench" / "results"
ZOO = ("mca", "damff", "adff", "dsaml", "sincnet")
ANCHORS_4Q = [
    ("SincNet paper: MLP on IS13 ComParE", "accuracy 63 %",
     "SincNet-MER paper's 4Q table: their own split and protocol (artist grouping not stated), accuracy only"),
    ("SincNet paper: MLP combined features", "accuracy 67 %", "same"),
    ("SincNet paper: SincNet (raw audio)", "accuracy 57-58 %", "same"),
    ("Panda et al. 2018 (TAFFC), full 900-clip 4Q", "F1 76.4 %",
     "different protocol: all 900 clips, their own CV, hand-crafted + novel expressive features; not comparable"),
]


def row_name(name: str) -> str:
    """Zero-shot rows are named after the checkpoint file: map those names back to the model."""
    return name.replace("final_best", "mca").replace("zse_", "").replace("zs_", "")


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def table_4q(data: dict[str, Any]) -> list[str]:
    lines = [
        "| model | W-F1 | acc | W-P | W-R | V sign acc | A sign acc | epochs | command |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ZOO:
        cv = data["cv"].get(name)
        if cv is None:
            lines.append(f"| {name} | not run (time) | | | | | | | |")
            continue
        m, s = cv["mean"], cv["std"]
        lines.append(
            f"| {name} | **{pct(m['weighted_f1'])}** ± {pct(s['weighted_f1'])} | {pct(m['accuracy'])} | "
            f"{pct(m['precision'])} | {pct(m['recall'])} | {pct(m['valence_sign_accuracy'])} | "
            f"{pct(m['arousal_sign_accuracy'])} | {cv['config']['epochs']} | `{cv['command']}` |"
        )
    base = data.get("4q_baselines")
    if base:
        for name, b in base["baselines"].items():
            m = b["mean"]
            lines.append(
                f"| baseline: {name} | {pct(m['weighted_f1'])} ± {pct(b['std']['weighted_f1'])} | "
                f"{pct(m['accuracy'])} | {pct(m['precision'])} | {pct(m['recall'])} | | | | `{base['command']}` |"
            )
    for name, value, note in ANCHORS_4Q:
        lines.append(f"| anchor: {name} | {value} | | | | | | | {note} |")
    return lines


def table_vgmidi(part: dict[str, Any]) -> list[str]:
    lines = [
        "| row | V CCC glob | A CCC glob | V PCC glob | A PCC glob | V RMSE glob | A RMSE glob | "
        "V CCC piece | A CCC piece | V PCC piece | A PCC piece | V RMSE piece | A RMSE piece |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in part["rows"].items():
        g, p = row["pooled"]["global"], row["pooled"]["per_song"]
        cells = [num(g.get(f"{d}_{k}")) for k in ("ccc", "pcc", "rmse") for d in ("valence", "arousal")]
        cells += [num(p.get(f"{d}_{k}")) for k in ("ccc", "pcc", "rmse") for d in ("valence", "arousal")]
        lines.append(f"| {row_name(name)} | " + " | ".join(cells) + " |")
    return lines


def table_emopia(part: dict[str, Any]) -> list[str]:
    lines = ["| row | W-F1 | acc | W-P | W-R |", "|---|---|---|---|---|"]
    for name, m in part["rows"].items():
        lines.append(f"| {row_name(name)} | {pct(m['weighted_f1'])} | {pct(m['accuracy'])} | {pct(m['precision'])} | "
                     f"{pct(m['recall'])} |")
    return lines


def collect() -> dict[str, Any]:
    data: dict[str, Any] = {"cv": {}}
    for name in ZOO:
        cv = _load(CV_DIR / f"{name}_4q_cv.json")
        if cv is not None:
            cv = {k: v for k, v in cv.items() if k not in ("clips",)}
            for f in cv.get("per_fold", []):
                f.pop("history", None)
            data["cv"][name] = cv
    for path in sorted(PARTS.glob("*.json")):
        data[path.stem] = json.loads(path.read_text())
    return data


def main() -> None:
    data = collect()
    (OUT / "accuracy.json").write_text(json.dumps(data, indent=1))
    out = ["<!-- generated tables: python -m bench.accuracy.report -->", "", "### 4Q (artist-grouped 5-fold CV)", ""]
    out += table_4q(data)
    for key, part in data.items():
        if key.startswith("vgmidi"):
            out += ["", f"### VGMIDI ({key}; {part['split']})", "", f"Command: `{part['command']}`", ""]
            out += table_vgmidi(part)
        if key.startswith("emopia"):
            out += ["", f"### EMOPIA ({key}; {part['split']}, {part['n_val']} val clips)", "",
                    f"Command: `{part['command']}`", ""]
            out += table_emopia(part)
    notes = (CV_DIR / "notes.md").read_text() if (CV_DIR / "notes.md").exists() else ""
    head, _, tail = notes.partition("<!-- TABLES -->")
    (OUT / "accuracy.md").write_text(head + "\n".join(out) + "\n" + tail)
    print("\n".join(out))


if __name__ == "__main__":
    main()
