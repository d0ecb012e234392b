"""Assemble ``bench/results/accuracy.json`` and the tables of ``accuracy.md`` from the per-run JSON files.

Why generated: the numbers come from many runs (one ``emotrack train`` CV per model, plus the baseline and
cross-data-set runs of :mod:`bench.accuracy.zoo_bench`); regenerating the tables from those files keeps
every row tied to the JSON (and command) it came from. The prose notes live in ``NOTES`` below.

Usage: ``python -m bench.accuracy.report``. Reads ``bench/accuracy/<model>_4q_cv.json`` and
``<model>_emopia_cv.json`` (``emotrack train`` CV runs), ``<model>_<data>_gpu_cv.json`` (GPU runs of
:mod:`bench.accuracy.device_cv`), ``bench/results/accuracy_parts/*.json`` (:mod:`bench.accuracy.zoo_bench`) and
the hand-written prose ``bench/accuracy/notes.md``; writes ``bench/results/accuracy.md`` and ``accuracy.json``.
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


RETIRED_SUFFIX = "-windowed"
"""Runs of a front end's earlier definition (musicnn recomputed over a 3 s window every hop), kept beside the
bundled file's for before/after comparison."""

MULTI_FRONTEND = {"mca": "logmel"}
"""Models that can read several front ends, with their default: their rows always name the front end."""


def model_label(model: str, config: dict[str, Any] | None) -> str:
    """``"damff"``; ``"mca (logmel)"`` or ``"mca (logmel_tonal)"`` for a model that reads several front ends."""
    frontend = ((config or {}).get("model_kwargs") or {}).get("frontend") or MULTI_FRONTEND.get(model)
    return f"{model} ({frontend})" if frontend else model


def labels_in_order(labels: Any) -> list[str]:
    """Every zoo model (on its default front end) and the given labels: zoo order, variants after each model."""
    everything = {*labels, *(model_label(name, None) for name in ZOO)}
    return sorted(everything, key=lambda lab: (ZOO.index(lab.split(" ")[0]), lab))


def row_4q(label: str, cv: dict[str, Any], epochs: Any, command: str, bold: bool = False) -> str:
    """One 4Q table row from a CV result's fold means and spread (``bold``: the headline F1)."""
    m, s = cv["mean"], cv["std"]
    f1 = f"**{pct(m['weighted_f1'])}**" if bold else pct(m["weighted_f1"])
    return (
        f"| {label} | {f1} ± {pct(s['weighted_f1'])} | {pct(m['accuracy'])} | "
        f"{pct(m['precision'])} | {pct(m['recall'])} | {pct(m['valence_sign_accuracy'])} | "
        f"{pct(m['arousal_sign_accuracy'])} | {epochs} | `{command}` |"
    )


def table_4q(data: dict[str, Any]) -> list[str]:
    lines = [
        "| model | W-F1 | acc | W-P | W-R | V sign acc | A sign acc | epochs | command |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in labels_in_order(data["cv"]):
        cv = data["cv"].get(name)
        if cv is None:
            lines.append(f"| {name} | not run (time) | | | | | | | |")
            continue
        lines.append(row_4q(name, cv, cv["config"]["epochs"], cv["command"], bold=True))
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


def _slim(cv: dict[str, Any]) -> dict[str, Any]:
    """A CV JSON without its per-clip list and per-epoch histories (kept in the source files)."""
    cv = {k: v for k, v in cv.items() if k not in ("clips",)}
    for f in cv.get("per_fold", []):
        f.pop("history", None)
    for part in cv.get("datasets", {}).values():
        for f in part.get("per_fold", []):
            f.pop("history", None)
    return cv


def collect() -> dict[str, Any]:
    data: dict[str, Any] = {"cv": {}, "gpu": {}, "emopia_cv": {}, "vgmidi_cv": {}}
    for key, pattern in (("cv", "*_4q_cv.json"), ("emopia_cv", "*_emopia_cv.json"), ("vgmidi_cv", "*_vgmidi_cv.json")):
        runs = {}
        for path in CV_DIR.glob(pattern):  # mca_4q_cv.json, mca-tonal_4q_cv.json, ...
            cv = _slim(json.loads(path.read_text()))
            label = model_label(cv["model"], cv.get("config"))
            if path.stem.split("_")[0].endswith(RETIRED_SUFFIX):  # e.g. mca-musicnn-windowed_4q_cv.json
                label += " windowed, before issue 13"
            runs[label] = cv
        data[key] = {label: runs[label] for label in labels_in_order(runs) if label in runs}
    for name in ZOO:
        for path in sorted(CV_DIR.glob(f"{name}_*_gpu_cv.json")):
            cv = _slim(json.loads(path.read_text()))
            data["gpu"][f"{name}_{cv['data']}"] = cv
    for path in sorted(PARTS.glob("*.json")):
        data[path.stem] = json.loads(path.read_text())
    return data


def _epochs(cv: dict[str, Any]) -> str:
    """Epochs actually run per fold ("4-6" when the GPU deadline cut folds differently)."""
    runs = [f.get("epochs_run") for f in cv.get("per_fold", []) if f.get("epochs_run")]
    if not runs:
        return str(cv.get("config", {}).get("epochs", ""))
    return str(min(runs)) if min(runs) == max(runs) else f"{min(runs)}-{max(runs)}"


def _gpu_name(cv: dict[str, Any]) -> str:
    return cv.get("device", {}).get("gpu", "GPU").replace("NVIDIA ", "")


def rows_4q_gpu(data: dict[str, Any]) -> list[str]:
    lines = []
    for cv in data["gpu"].values():
        if cv["data"] != "4q":
            continue
        label = f"{model_label(cv['model'], cv.get('config'))} ({_gpu_name(cv)} run)"
        lines.append(row_4q(label, cv, _epochs(cv), cv["run_command"]))
    return lines


def _reg_cells(pooled: dict[str, Any]) -> list[str]:
    g, p = pooled["global"], pooled["per_song"]
    cells = [num(g.get(f"{d}_{k}")) for k in ("ccc", "pcc", "rmse") for d in ("valence", "arousal")]
    return cells + [num(p.get(f"{d}_{k}")) for k in ("ccc", "pcc", "rmse") for d in ("valence", "arousal")]


def vgmidi_rows(data: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], str, bool]]:
    """(row name, epochs, pooled regression metrics, command, trained with the current trainer) per VGMIDI result.

    "Current" means after the log-mel std floor (``LOGMEL_MIN_STD``): zoo_bench parts tagged ``*floor``, ``*tonal``
    or ``*musicnn`` and ``emotrack train`` CV files; earlier parts and the H200 run predate it.
    """
    rows = []
    for key, part in data.items():
        if not key.startswith("vgmidi_") or key == "vgmidi_cv":
            continue
        for name, row in part["rows"].items():
            epochs = str(row.get("config", {}).get("epochs", "")) if "config" in row else ""
            model, _, rest = row_name(name).partition(" ")
            retired = " windowed, before issue 13" if key.endswith(RETIRED_SUFFIX) else ""
            label = f"{model_label(model, row.get('config'))}{retired} {rest}".strip()
            label += f" [{key}]" if key != "vgmidi_main" and "trained" in name else ""
            current = key.removesuffix(RETIRED_SUFFIX).endswith(("floor", "tonal", "musicnn"))
            rows.append((label, epochs, row["pooled"], part["command"], current))
    for cv in data["gpu"].values():
        if cv["data"] == "vgmidi":
            label = f"{model_label(cv['model'], cv.get('config'))} (trained on VGMIDI, {_gpu_name(cv)} run)"
            rows.append((label, _epochs(cv), cv["pooled_regression"], cv["run_command"], False))
    for name, cv in data["vgmidi_cv"].items():
        rows.append((f"{name} (trained on VGMIDI)", _epochs(cv), cv["datasets"]["vgmidi"]["pooled"], cv["command"],
                     True))
    return rows


def table_vgmidi_all(data: dict[str, Any]) -> list[str]:
    lines = [
        "| row | epochs | V CCC glob | A CCC glob | V PCC glob | A PCC glob | V RMSE glob | A RMSE glob | "
        "V CCC piece | A CCC piece | V PCC piece | A PCC piece | V RMSE piece | A RMSE piece |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    commands: dict[str, int] = {}
    for label, epochs, pooled, command, _ in vgmidi_rows(data):
        ref = commands.setdefault(command, len(commands) + 1)
        lines.append(f"| {label} [c{ref}] | {epochs} | " + " | ".join(_reg_cells(pooled)) + " |")
    lines += ["", *(f"- c{i}: `{c}`" for c, i in commands.items())]
    return lines


def table_emopia_all(data: dict[str, Any]) -> list[str]:
    lines = ["| row | epochs | W-F1 | acc | W-P | W-R | V sign acc | A sign acc | command |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key, part in data.items():
        if key.startswith("emopia_") and key != "emopia_cv":  # zoo_bench parts: baselines, zero-shot
            for name, m in part["rows"].items():
                lines.append(f"| {row_name(name)} | | {pct(m['weighted_f1'])} | {pct(m['accuracy'])} | "
                             f"{pct(m['precision'])} | {pct(m['recall'])} | | | `{part['command']}` |")
    for name, cv in data["emopia_cv"].items():
        part = cv["datasets"]["emopia"]
        m, s = part["mean"], part["std"]
        spread = f" ± {pct(s['weighted_f1'])}" if len(part.get("per_fold", [])) > 1 else ""  # one official split
        lines.append(
            f"| {name} (trained on EMOPIA train) | {_epochs(cv)} | **{pct(m['weighted_f1'])}**{spread} | "
            f"{pct(m['accuracy'])} | {pct(m['precision'])} | {pct(m['recall'])} | "
            f"{pct(m['valence_sign_accuracy'])} | {pct(m['arousal_sign_accuracy'])} | `{cv['command']}` |"
        )
    return lines


def table_summary(data: dict[str, Any]) -> list[str]:
    """One row per model: its headline number on each data set (the longest-trained run of each)."""
    best_vg: dict[str, tuple[tuple[bool, int], str, dict[str, Any]]] = {}
    for label, epochs, pooled, _, current in vgmidi_rows(data):
        model = label.partition(" (trained")[0]
        if model.split(" ")[0] in ZOO and "trained on VGMIDI" in label:
            rank = (current, int(str(epochs).split("-")[-1] or 0))  # current trainer first, then longest
            if model not in best_vg or rank > best_vg[model][0]:
                best_vg[model] = (rank, epochs, pooled)
    lines = ["| model | 4Q W-F1 (epochs) | VGMIDI V CCC / A CCC, global (epochs) | EMOPIA val W-F1 (epochs) |",
             "|---|---|---|---|"]
    for name in labels_in_order([*data["cv"], *best_vg, *data["emopia_cv"]]):
        cv = data["cv"].get(name)
        q4 = f"{pct(cv['mean']['weighted_f1'])} ({cv['config']['epochs']})" if cv else "not run"
        vg = best_vg.get(name)
        vgc = (f"{num(vg[2]['global']['valence_ccc'])} / {num(vg[2]['global']['arousal_ccc'])} ({vg[1]})"
               if vg else "not run")
        em = data["emopia_cv"].get(name)
        emc = (f"{pct(em['datasets']['emopia']['mean']['weighted_f1'])} ({_epochs(em)})" if em else "not run")
        lines.append(f"| {name} | {q4} | {vgc} | {emc} |")
    return lines


DEFAULT_RUNS = {
    "mca-musicnn-default": "default (shipped 0.6.0): the mean of two seeds of the 0.4.0 recipe plus a per-sequence "
                           "1 - PCC term (`sequence_pcc` 1.0; `--ensemble`)",
    "mca-musicnn-default-pcc": "its member seed 0 alone",
    "mca-musicnn-default-pcc-s1": "its member seed 1 alone (hparams seed 1)",
    "mca-musicnn-pooled": "experiment, not shipped: its member seed 0's recipe on musicnn's 1,506 pooled "
                          "statistics per window (`frontend_params` layer `pooled`, 3,040 features), not its 200 units",
    "mca-musicnn-pooled-s1": "experiment, not shipped: the same on the pooled layer, hparams seed 1",
    "mca-musicnn-pooled-pair": "experiment, not shipped: the two pooled-layer seeds averaged (`--ensemble`), the "
                               "counterpart of the shipped pair",
    "mca-musicnn-pitch": "experiment, not shipped: its member seed 0's recipe with pitch-shifted copies of the 4Q "
                         "clips (`pitch_shifts` -2, -1, +1, +2 semitones, one version drawn per use)",
    "mca-musicnn-pitch-s1": "experiment, not shipped: the same with pitch-shifted copies, hparams seed 1",
    "mca-musicnn-pitch-pair": "experiment, not shipped: the two pitch-shift seeds averaged (`--ensemble`), the "
                              "counterpart of the shipped pair",
    "mca-musicnn-mtt": "experiment, not shipped: its member seed 0's recipe on musicnn's other pretrained network, "
                       "`MTT_musicnn` (MagnaTagATune tags; `frontend_params` weights `mtt`, graphs built locally and "
                       "not bundled: `bench/findings.md`, tenth round)",
    "mca-musicnn-default-0.5": "previous default 0.5.0: the same pair without the PCC term",
    "mca-musicnn-default-0.4": "0.5.0's member seed 0 alone = the 0.4.0 recipe: musicnn_tonal front end, medleys with "
                               "3 cuts, 6 more hops scored after each cut",
    "mca-musicnn-default-s1": "0.5.0's member seed 1 alone (the same recipe, hparams seed 1)",
    "mca-musicnn-default-b": "same front end, medleys with one cut (no extra hops)",
    "mca-musicnn-default-0.3": "previous default 0.3.0 recipe: musicnn front end, one cut; all data, VGMIDI x3 per "
                               "epoch, 48 hops per series",
    "mca-musicnn-default-a": "0.3.0 recipe without VGMIDI upweighting (ablation)",
}
"""CV runs of the shipped default's recipe (``<stem>_4q_vgmidi_emopia_cv.json``) and its ablation."""
TARGETS = {"4q": 0.74, "vgmidi_a": 0.75, "vgmidi_v": 0.45, "vgmidi_piece_a_pcc": 0.35, "emopia": 0.60}


def _default_rows() -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for stem, label in DEFAULT_RUNS.items():
        path = CV_DIR / f"{stem}_4q_vgmidi_emopia_cv.json"
        if path.exists():
            rows.append((label, _slim(json.loads(path.read_text()))))
    return rows


def _ok(value: float | None, target: float, higher: bool = True) -> str:
    if value is None:
        return "n/a"
    return "yes" if (value >= target if higher else value <= target) else "**no**"


def table_default(data: dict[str, Any]) -> list[str]:
    """The shipped default against the issue-14 targets, then its recipe's CV beside the specialised runs."""
    rows = _default_rows()
    if not rows:
        return []
    _, cv = rows[0]
    ds = cv["datasets"]
    q4, em = ds["4q"]["mean"]["weighted_f1"], ds["emopia"]["mean"]["weighted_f1"]
    vg = ds["vgmidi"]["pooled"]
    checks_path = CV_DIR / "default_checks.json"
    checks = json.loads(checks_path.read_text()) if checks_path.exists() else {}
    response_path = OUT / "response.json"
    response = json.loads(response_path.read_text()) if response_path.exists() else {}
    cmd = f"`{cv['command']}`"
    lines = ["| measure | target | result | met | command |", "|---|---|---|---|---|",
             f"| 4Q weighted F1, artist-grouped 5-fold CV (fold mean ± std) | ≥ 74 % | {pct(q4)} ± "
             f"{pct(ds['4q']['std']['weighted_f1'])} % | {_ok(q4, TARGETS['4q'])} | {cmd} |",
             f"| VGMIDI global CCC arousal / valence, piece-grouped CV | ≥ 0.75 / ≥ 0.45 | "
             f"{num(vg['global']['arousal_ccc'])} / {num(vg['global']['valence_ccc'])} | "
             f"{_ok(vg['global']['arousal_ccc'], TARGETS['vgmidi_a'])} / "
             f"{_ok(vg['global']['valence_ccc'], TARGETS['vgmidi_v'])} | same |",
             f"| VGMIDI per-piece PCC arousal (valence) | ≥ 0.35 | {num(vg['per_song']['arousal_pcc'])} "
             f"({num(vg['per_song']['valence_pcc'])}) | "
             f"{_ok(vg['per_song']['arousal_pcc'], TARGETS['vgmidi_piece_a_pcc'])} | same |",
             f"| EMOPIA val weighted F1, fold models of the CV (mean of 5) | ≥ 60 % | {pct(em)} % | "
             f"{_ok(em, TARGETS['emopia'])} | same |"]
    if "emopia_val_bundled" in checks:
        e = checks["emopia_val_bundled"]
        lines.append(f"| EMOPIA val weighted F1, **the bundled file** ({e['model']}, {e['n_clips']} clips) | ≥ 60 % | "
                     f"{pct(e['weighted_f1'])} % | {_ok(e['weighted_f1'], TARGETS['emopia'])} | `{e['command']}` |")
    if "calibration_vgmidi_cv" in checks:
        c = checks["calibration_vgmidi_cv"]
        ratios = [c[a]["raw_std_ratio"] for a in ("valence", "arousal")]
        lines.append(f"| VGMIDI per-hop output spread / label spread, valence / arousal (raw; smoothed) | 0.7-1.3 | "
                     f"{ratios[0]:.2f} / {ratios[1]:.2f} ({c['valence']['smoothed_std_ratio']:.2f} / "
                     f"{c['arousal']['smoothed_std_ratio']:.2f}); hops beyond ±0.9: "
                     f"{100 * max(c[a]['raw_share_beyond_0.9'] for a in ('valence', 'arousal')):.1f} % | "
                     f"{_ok(min(ratios), 0.7)} | `{checks['command']}` |")
    if "nonmusic_bundled" in checks:
        for name, n in checks["nonmusic_bundled"].items():
            lines.append(f"| {name}: inactive hops (`emotrack analyze`, no `--model`) | ≥ 95 % | "
                         f"{100 * n['inactive_share']:.0f} % of {n['hops']} | {_ok(n['inactive_share'], 0.95)} | "
                         "same |")
    if "music_active_cv" in checks:
        shares = ", ".join(f"{name} {100 * m['active_share_mean']:.1f} %"
                           for name, m in checks["music_active_cv"].items())
        lines.append(f"| music taken for music: hops from 2 s on with music output ≥ 0.5 (fold models, test clips) | "
                     f"(not set) | {shares} | | same |")
    if "quiet_music" in checks:
        shares = ", ".join(f"{lvl}: {100 * m['active_share_mean']:.1f} % (lowest clip "
                           f"{100 * m['active_share_min']:.0f} %)" for lvl, m in checks["quiet_music"].items())
        lines.append(f"| quiet music: EMOPIA val clips scaled to a lower RMS, active hops from 2 s on (bundled file) | "
                     f"(not set) | {shares} | | same |")
    table = response.get("results", {}).get("4q", {})
    for kind, limit in (("raw", 2.5), ("smoothed", 3.5)):
        m = table.get(f"default recipe (CV fold model) | {kind}")
        if m:
            med = [m[a]["median_s"] for a in ("valence", "arousal")]
            caught = min(m[a]["caught_within_10s"] for a in ("valence", "arousal"))
            worst = None if None in med else max(med)
            lines.append(f"| 4Q medleys, {kind}: median response valence / arousal; caught ≤ 10 s | ≤ {limit} s; "
                         f"≥ 95 % | {' / '.join('> segment' if x is None else f'{x:.1f} s' for x in med)}; "
                         f"{100 * caught:.0f} % | {_ok(worst, limit, higher=False)}; {_ok(caught, 0.95)} | "
                         f"`{response['command']}` |")
    lines += ["", "Its recipe's CV beside the specialised runs (the price of generality):", "",
              "| run | 4Q W-F1 | EMOPIA val W-F1 | VGMIDI V / A CCC global | VGMIDI V / A PCC per piece | command |",
              "|---|---|---|---|---|---|"]
    for label, run in rows:
        d = run["datasets"]
        g, p = d["vgmidi"]["pooled"]["global"], d["vgmidi"]["pooled"]["per_song"]
        lines.append(f"| {label} | {pct(d['4q']['mean']['weighted_f1'])} | {pct(d['emopia']['mean']['weighted_f1'])} | "
                     f"{num(g['valence_ccc'])} / {num(g['arousal_ccc'])} | {num(p['valence_pcc'])} / "
                     f"{num(p['arousal_pcc'])} | `{run['command']}` |")
    spec4 = data["cv"].get("mca (musicnn)")
    spec_em = data["emopia_cv"].get("mca (musicnn)")
    spec_vg = next((r for r in vgmidi_rows(data) if r[0].startswith("mca (musicnn) (trained on VGMIDI")), None)
    if spec4:
        lines.append(f"| specialised: 4Q only (previous default 0.2.0) | {pct(spec4['mean']['weighted_f1'])} | | | | "
                     f"`{spec4['command']}` |")
    if spec_em:
        f1 = spec_em["datasets"]["emopia"]["mean"]["weighted_f1"]
        lines.append(f"| specialised: EMOPIA train only | | {pct(f1)} | | | `{spec_em['command']}` |")
    if spec_vg:
        g, p = spec_vg[2]["global"], spec_vg[2]["per_song"]
        lines.append(f"| specialised: VGMIDI only | | | {num(g['valence_ccc'])} / {num(g['arousal_ccc'])} | "
                     f"{num(p['valence_pcc'])} / {num(p['arousal_pcc'])} | `{spec_vg[3]}` |")
    return lines


def main() -> None:
    data = collect()
    (OUT / "accuracy.json").write_text(json.dumps(data, indent=1))
    out = ["<!-- generated tables: python -m bench.accuracy.report -->", ""]
    default = table_default(data)
    if default:
        checks_path = CV_DIR / "default_checks.json"
        model = json.loads(checks_path.read_text())["emopia_val_bundled"]["model"] if checks_path.exists() else ""
        name = model.replace("mca-musicnn-", "`mca-musicnn` ") or "`mca-musicnn`"
        out += [f"### The shipped default: {name}, what `emotrack analyze` runs without `--model`", "",
                *default, ""]
    out += ["### Summary (per model and data set: its longest run with the current trainer; details below)", ""]
    out += table_summary(data)
    out += ["", "### 4Q (artist-grouped 5-fold CV)", ""]
    lines = table_4q(data)
    anchors = next(i for i, line in enumerate(lines) if line.startswith("| baseline"))
    out += lines[:anchors] + rows_4q_gpu(data) + lines[anchors:]
    out += ["", "### VGMIDI (piece-grouped 5-fold CV, mean-annotator labels; metrics pooled over all test pieces)", ""]
    out += table_vgmidi_all(data)
    out += ["", "### EMOPIA (official song-level split: train -> val)", ""]
    out += table_emopia_all(data)
    notes = (CV_DIR / "notes.md").read_text() if (CV_DIR / "notes.md").exists() else ""
    head, _, tail = notes.partition("<!-- TABLES -->")
    (OUT / "accuracy.md").write_text(head + "\n".join(out) + "\n" + tail)
    print("\n".join(out))


if __name__ == "__main__":
    main()
