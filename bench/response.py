"""Response time on medleys: how fast does the streamed output follow a cut to music of another quadrant?

Medleys are built from clips that no model streaming them trained on: for every combination of one fold per
CV run (artist-grouped 4Q, piece-grouped VGMIDI), the clips in the test part of each, so runs with different
splits (the default's recipe was split over 4Q + VGMIDI, the light model's over 4Q) are compared fairly;
``--segments`` segments of 12-20 s, each from a random clip whose quadrant differs from the previous one
(VGMIDI: a piece whose mean-label quadrant differs), cut on the 0.5 s hop grid and concatenated as audio.
Each model streams the medley through the real pipeline (:class:`~emotrack.realtime.tracker.Tracker`,
the code path of ``emotrack analyze``), raw and with the default smoothing.

After each cut, on each axis whose sign changes, the response time is the time from the cut to the end of
the first hop from which at least 4 of the next 5 hops have the new sign; a change not taken before the
next cut is a miss (counted as infinitely slow in the median). Reported per model: median and 90th
percentile, the share caught within 10 s, and the mean per-medley Pearson correlation of the output with
the step targets (4Q: the quadrant's graded point; VGMIDI: the real per-hop labels).

Side by side, on the same medleys:

* ``--cv-run LABEL=DIR`` entries: the fold models of ``emotrack train`` CV runs (``fold<i>_best.pt``): the
  default's recipe and the light model's, neither of which saw the medley's clips;
* ``--model NAME=FILE`` entries: shipped files (the light ``mca``, the previous default); they were trained
  on all 4Q clips, these included, so their numbers are optimistic and labelled so;
* ``loudness``: arousal from the RMS level of the newest 3 s (threshold fitted on the data set's other
  clips); it has no valence.

    python -m bench.response --cv-run "default recipe=/tmp/runs/cvB" --cv-run "light mca recipe=/tmp/runs/light" \\
        --model "previous default 0.2.0 (saw these 4Q clips)=/tmp/emo/mca-musicnn-0.2.0.onnx"
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import RESULTS, save
from emotrack.audio import load_audio
from emotrack.data.clips import Clip
from emotrack.inference import ModelRunner
from emotrack.realtime.smoothing import DEFAULT_SMOOTHING, make_smoother, parse_param
from emotrack.realtime.tracker import Tracker
from emotrack.training.trainer import GRADED_SCALE, quadrant_signs

SR = 16000
HOP = 0.5
SEGMENT_S = (12.0, 20.0)
AGREE, WINDOW = 4, 5
CATCH_S = 10.0
SETTLED_HOPS = 10
LOUDNESS_S = 3.0


# -- medleys ---------------------------------------------------------------------------------------


def _quadrant(clip: Clip) -> int:
    if clip.quadrant:
        return int(clip.quadrant)
    v, a = float(np.nanmean(clip.valence)), float(np.nanmean(clip.arousal))
    return (1 if v >= 0 else 2) if a >= 0 else (4 if v >= 0 else 3)


def _targets(clip: Clip, start_hop: int, n: int) -> np.ndarray:
    """Per-hop (valence, arousal) targets of a segment: the graded quadrant point, or the real labels."""
    if clip.quadrant:
        return np.tile(quadrant_signs(clip.quadrant) * np.float32(GRADED_SCALE), (n, 1))
    out = np.full((n, 2), np.nan, np.float32)
    va = np.stack([clip.valence, clip.arousal], 1)[start_hop : start_hop + n]
    out[: len(va)] = va
    return out


def make_medley(clips: list[Clip], rng: np.random.Generator, segments: int) -> dict[str, Any] | None:
    """Audio, per-hop targets and cut hops of one medley drawn from ``clips`` (None if too few quadrants)."""
    audio, targets, cuts, signs, prev = [], [], [], [], 0
    for _ in range(segments):
        pool = [c for c in clips if _quadrant(c) != prev]
        if not pool:
            return None
        clip = pool[int(rng.integers(len(pool)))]
        x = load_audio(clip.audio_path, SR)
        total = len(x) / SR
        seconds = float(rng.uniform(*SEGMENT_S))
        seconds = min(seconds, HOP * int(total / HOP))
        n_hops = int(seconds / HOP)
        if n_hops < 2 * WINDOW:
            continue
        start_hop = int(rng.integers(0, int(total / HOP) - n_hops + 1))
        audio.append(x[int(start_hop * HOP * SR) : int((start_hop + n_hops) * HOP * SR)])
        cuts.append(sum(len(t) for t in targets))
        targets.append(_targets(clip, start_hop, n_hops))
        q = _quadrant(clip)
        signs.append(quadrant_signs(q))
        prev = q
    if len(audio) < 2:
        return None
    return {"audio": np.concatenate(audio), "targets": np.concatenate(targets), "cuts": cuts, "signs": signs}


# -- outputs of one medley -------------------------------------------------------------------------


def stream(runner: ModelRunner, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw ``[n_hops, 2]`` and ``active`` ``[n_hops]`` of ``audio`` through the real tracker (as ``emotrack
    analyze``, no smoothing)."""
    tracker = Tracker(runner, SR, make_smoother("none"), batch_hops=64)
    results = tracker.process(audio[:, None]) + tracker.finish()
    raw = np.array([(r.valence_raw, r.arousal_raw) for r in results], np.float32)
    return raw, np.array([r.active for r in results], bool)


def smooth(raw: np.ndarray, active: np.ndarray, spec: str) -> np.ndarray:
    """What the tracker publishes with smoothing ``spec`` (``NAME`` or ``NAME:key=value,...``): the smoother
    fed the raw values of active hops and the centre (0, 0) otherwise, exactly as
    :meth:`~emotrack.realtime.tracker.Tracker` does, so one raw stream serves every smoother."""
    name, _, params = spec.partition(":")
    smoother = make_smoother(name, **dict(parse_param(kv) for kv in params.split(",") if kv))
    return np.array([smoother.process(*(map(float, va) if on else (0.0, 0.0))) for va, on in zip(raw, active,
                                                                                               strict=True)])


def jitter(out: np.ndarray) -> float:
    """Median absolute hop-to-hop change over both axes: how much a visual driven by ``out`` flickers."""
    return float(np.median(np.abs(np.diff(out, axis=0)))) if len(out) > 1 else float("nan")


def hop_loudness(audio: np.ndarray) -> np.ndarray:
    """Per hop: RMS level (dB) of the newest :data:`LOUDNESS_S` seconds, causal."""
    hop = int(HOP * SR)
    n = len(audio) // hop
    power = np.array([np.mean(np.square(audio[i * hop : (i + 1) * hop], dtype=np.float64)) for i in range(n)])
    k = int(LOUDNESS_S / HOP)
    csum = np.concatenate([[0.0], np.cumsum(power)])
    mean = np.array([(csum[i + 1] - csum[max(0, i + 1 - k)]) / min(k, i + 1) for i in range(n)])
    return 10 * np.log10(mean + 1e-12)


_LOUDNESS: dict[str, np.ndarray] = {}
"""Per-hop loudness of each clip, computed once (thresholds are refitted for every unseen part)."""


def loudness_threshold(train_clips: list[Clip], rng: np.random.Generator, n: int = 120) -> float:
    """dB where a least-squares line from loudness to the arousal target crosses 0, on training clips."""
    pick = rng.choice(len(train_clips), min(n, len(train_clips)), replace=False)
    xs, ys = [], []
    for i in pick:
        c = train_clips[int(i)]
        if c.id not in _LOUDNESS:
            _LOUDNESS[c.id] = hop_loudness(load_audio(c.audio_path, SR))
        db = _LOUDNESS[c.id]
        t = _targets(c, 0, len(db))[:, 1]
        keep = np.isfinite(t)
        xs.append(db[keep])
        ys.append(t[keep])
    w, b = np.polyfit(np.concatenate(xs), np.concatenate(ys), 1)
    return float(-b / w)


# -- metrics ---------------------------------------------------------------------------------------


def response_times(out: np.ndarray, medley: dict[str, Any]) -> list[tuple[int, float, bool]]:
    """``(axis, seconds, settled right)`` per cut and changing axis (``inf`` if not taken before the next cut).

    "Settled right": the mean output over the segment's last :data:`SETTLED_HOPS` hops has the new sign, i.e.
    the model's verdict on the new music, however late; a change it never gets right is a classification
    error, not a slow response, so the share caught is bounded by this share."""
    found = []
    cuts = medley["cuts"] + [len(out)]
    for j in range(1, len(medley["signs"])):
        start, stop = cuts[j], min(cuts[j + 1], len(out))
        for axis in range(out.shape[1]):
            new = medley["signs"][j][axis]
            if new == medley["signs"][j - 1][axis]:
                continue
            agree = np.sign(out[start:stop, axis]) == new
            t = np.inf
            for h in range(0, stop - start - WINDOW + 1):
                if agree[h : h + WINDOW].sum() >= AGREE:
                    t = (h + 1) * HOP
                    break
            settled = bool(np.sign(out[max(start, stop - SETTLED_HOPS) : stop, axis].mean()) == new)
            found.append((axis, t, settled))
    return found


def tracking_pcc(out: np.ndarray, targets: np.ndarray) -> list[float]:
    """Pearson r per axis between a medley's output and its targets (NaN where undefined)."""
    n = min(len(out), len(targets))
    rs = []
    for axis in range(out.shape[1]):
        y, p = targets[:n, axis], out[:n, axis]
        keep = np.isfinite(y)
        rs.append(float(np.corrcoef(p[keep], y[keep])[0, 1]) if keep.sum() > 2 and np.std(y[keep]) > 0
                  and np.std(p[keep]) > 0 else float("nan"))
    return rs


def summarise(times: list[tuple[int, float, bool]], pccs: list[list[float]], axes: tuple[str, ...],
              jitters: list[float] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for axis, name in enumerate(axes):
        t = np.array([s for a, s, _ in times if a == axis])
        settled = np.array([ok for a, _, ok in times if a == axis], bool)
        r = np.array([p[axis] for p in pccs if len(p) > axis])
        if not len(t):
            continue
        finite = lambda x: None if np.isinf(x) else float(x)  # noqa: E731  (JSON has no infinity)
        out[name] = {
            "changes": int(len(t)),
            "median_s": finite(np.percentile(t, 50, method="higher")),
            "p90_s": finite(np.percentile(t, 90, method="higher")),
            "caught_within_10s": round(float(np.mean(t <= CATCH_S)), 4),
            "missed": int(np.isinf(t).sum()),
            "settled_right": round(float(np.mean(settled)), 4),
            "caught_within_10s_of_settled_right": round(float(np.mean(t[settled] <= CATCH_S)), 4)
            if settled.any() else None,
            "median_s_of_settled_right": finite(np.percentile(t[settled], 50, method="higher")) if settled.any()
            else None,
            "tracking_pcc": round(float(np.nanmean(r)), 4) if np.isfinite(r).any() else None,
            "jitter": round(float(np.median(jitters)), 4) if jitters else None,
        }
    return out


# -- driver ----------------------------------------------------------------------------------------


def _fold_runner(cv_run: Path, fold: int, tmp: Path) -> ModelRunner:
    """Export ``fold<i>_best.pt`` to ONNX and load it like a shipped file."""
    from emotrack.export.onnx import export_onnx
    from emotrack.training.checkpoint import load_checkpoint

    model, card, _ = load_checkpoint(cv_run / f"fold{fold}_best.pt")
    path = tmp / f"{cv_run.name}-fold{fold}.onnx"
    export_onnx(model, card, path)
    return ModelRunner(path, provider="cpu", threads=1)


def unseen_parts(runs: dict[str, list[dict]], ids: set[str]) -> list[tuple[dict[str, int], set[str]]]:
    """``({run label: fold}, clip ids)`` for every combination of folds, one per CV run, with the clips of
    ``ids`` that are in the test part of each run's chosen fold: medleys from such a set are unseen by every
    model that streams them. A run whose splits hold none of ``ids`` (not trained on that data set) always
    uses its fold 0 and counts every clip as unseen."""
    combos: list[tuple[dict[str, int], set[str]]] = [({}, set(ids))]
    for label, folds in runs.items():
        tests = [set(f["test"]) & ids for f in folds]
        if not any(tests) and not any(set(f["train"]) & ids for f in folds):
            combos = [({**c, label: 0}, pool) for c, pool in combos]
            continue
        combos = [({**c, label: k}, pool & t) for c, pool in combos for k, t in enumerate(tests)]
    return [(c, pool) for c, pool in combos if pool]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cv-run", action="append", required=True, metavar="LABEL=DIR",
                    help="an emotrack train CV run (fold<i>_best.pt, splits.json); the first is the default's recipe")
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--render-cache", default="/tmp/emocache")
    ap.add_argument("--medleys", type=int, default=120, help="4Q medleys in all, spread over the unseen parts")
    ap.add_argument("--vgmidi-medleys", type=int, default=40, help="VGMIDI medleys in all (0: none)")
    ap.add_argument("--segments", type=int, default=4)
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=MODEL",
                    help="a shipped model to run beside the fold models (trained on all 4Q: optimistic)")
    ap.add_argument("--smoothing", action="append", default=[], metavar="NAME[:KEY=VALUE,...]",
                    help="smoothers to compare on the same raw streams (first: the default's, labelled 'smoothed'); "
                    "default: the default smoothing only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="response")
    args = ap.parse_args()

    from emotrack.training.examples import load_clips

    run_dirs = {label: Path(d) for label, d in (r.split("=", 1) for r in args.cv_run)}
    runs = {label: json.loads((d / "splits.json").read_text())["folds"] for label, d in run_dirs.items()}
    sets = [("4q", args.medleys)] + ([("vgmidi", args.vgmidi_medleys)] if args.vgmidi_medleys else [])
    clips = {c.id: c for name, _ in sets for c in load_clips(args.data_root, [name], args.render_cache)}
    shipped = {label: ModelRunner(model, provider="cpu", threads=1)
               for label, model in (m.split("=", 1) for m in args.model)}
    rng = np.random.default_rng(args.seed)
    rows: dict[str, dict[str, dict[str, list]]] = {}

    smoothers = args.smoothing or [DEFAULT_SMOOTHING]
    kinds = {"smoothed" if i == 0 else f"smoothed {spec}": spec for i, spec in enumerate(smoothers)}

    def add(label: str, kind: str, data: str, times, pcc, jit: float) -> None:
        slot = rows.setdefault(data, {}).setdefault(f"{label} | {kind}", {"times": [], "pcc": [], "jitter": []})
        slot["times"] += times
        slot["pcc"].append(pcc)
        slot["jitter"].append(jit)

    with tempfile.TemporaryDirectory() as tmp:
        loaded: dict[tuple[str, int], ModelRunner] = {}
        for data, count in sets:
            ids = {i for i, c in clips.items() if c.dataset == data}
            parts = unseen_parts(runs, ids)
            total = sum(len(pool) for _, pool in parts)
            for folds, pool in parts:
                n = round(count * len(pool) / total)
                test = [clips[i] for i in sorted(pool)]
                if n == 0 or len({_quadrant(c) for c in test}) < 2:
                    continue
                threshold = loudness_threshold([clips[i] for i in sorted(ids - pool)], rng)
                print(f"{data} {folds}: {len(test)} unseen clips, {n} medleys, loudness threshold {threshold:.1f} dB",
                      flush=True)
                runners = {}
                for label, k in folds.items():
                    if (label, k) not in loaded:
                        loaded[(label, k)] = _fold_runner(run_dirs[label], k, Path(tmp))
                    runners[f"{label} (CV fold model)"] = loaded[(label, k)]
                runners.update(shipped)
                for _ in range(n):
                    medley = make_medley(test, rng, args.segments)
                    if medley is None:
                        continue
                    for label, runner in runners.items():
                        raw, active = stream(runner, medley["audio"])
                        outs = {"raw": raw, **{kind: smooth(raw, active, spec) for kind, spec in kinds.items()}}
                        for kind, out in outs.items():
                            add(label, kind, data, response_times(out, medley), tracking_pcc(out, medley["targets"]),
                                jitter(out))
                    loud = (hop_loudness(medley["audio"]) - threshold)[:, None]
                    on = np.ones(len(loud), bool)
                    loud_s = smooth(np.c_[np.zeros_like(loud), loud].clip(-1, 1), on, smoothers[0])[:, 1:]
                    ar = {"signs": [s[1:] for s in medley["signs"]], "cuts": medley["cuts"]}
                    for kind, out in (("raw", loud), ("smoothed", loud_s)):
                        add("loudness (arousal only)", kind, data, response_times(out, ar),
                            tracking_pcc(out, medley["targets"][:, 1:]), float("nan"))
    result: dict[str, Any] = {"protocol": __doc__.split("\n\n")[1:3], "segments_s": SEGMENT_S,
                              "smoothing": {kind: spec for kind, spec in kinds.items()},
                              "rule": f">= {AGREE} of the next {WINDOW} hops take the new sign",
                              "cv_runs": {k: str(v) for k, v in run_dirs.items()}, "results": {}}
    for data, by_label in rows.items():
        table = {}
        for label, slot in by_label.items():
            axes = ("arousal",) if label.startswith("loudness") else ("valence", "arousal")
            jit = [j for j in slot["jitter"] if np.isfinite(j)]
            table[label] = summarise(slot["times"], slot["pcc"], axes, jit)
        result["results"][data] = table
    path = save(args.name, result)
    result = json.loads(path.read_text())  # with the command and machine save() added
    (RESULTS / f"{args.name}.md").write_text(markdown(result, path))
    print(markdown(result, path))


def _seconds(x: float | None) -> str:
    return "> segment" if x is None else f"{x:.1f}"


def markdown(result: dict[str, Any], path: Path) -> str:
    lines = [f"# Response time on medleys ({path.name})", "",
             "Time from a cut to the first hop from which >= 4 of the next 5 hops have the new sign; misses count",
             "as infinitely slow ('> segment': not taken before the next cut). Medleys of clips that no fold model",
             "streaming them trained on (one test fold per CV run, intersected); shipped files marked 'saw these",
             "clips' were trained on all 4Q clips (optimistic). A model that keeps one sign throughout takes every",
             "cut to that sign at once (median 0.5 s) and misses every other: read the median beside the share",
             "caught. Jitter: the median |change| from one hop to the next (both axes), what a visual driven by",
             "the output flickers by; the smoothers run on the same raw streams. 'Settled right': the share of",
             "changes where the mean of the segment's last 5 s has the new sign (the model's verdict on the new",
             "music); 'caught | right' and 'median | right' count only those: speed apart from classification.", "",
             f"Command: `{result.get('command', '')}`", "",
             f"Machine: {result['machine']['cpu_model']}, {result['machine']['cores']} cores, CPU only, "
             f"{result['utc']}.", ""]
    for data, table in result["results"].items():
        lines += [f"## {data}", "", "| model | output | axis | changes | median s | p90 s | caught <= 10 s | missed |"
                  " settled right | caught \\| right | median \\| right | tracking r | jitter |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for label, axes in table.items():
            model, kind = label.split(" | ")
            for axis, m in axes.items():
                r = "" if m["tracking_pcc"] is None else f"{m['tracking_pcc']:.3f}"
                j = "" if m.get("jitter") is None else f"{m['jitter']:.3f}"
                cr = m.get("caught_within_10s_of_settled_right")
                lines.append(f"| {model} | {kind} | {axis} | {m['changes']} | {_seconds(m['median_s'])} | "
                             f"{_seconds(m['p90_s'])} | {100 * m['caught_within_10s']:.0f} % | {m['missed']} | "
                             f"{100 * m['settled_right']:.0f} % | {'' if cr is None else f'{100 * cr:.0f} %'} | "
                             f"{_seconds(m['median_s_of_settled_right'])} | {r} | {j} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
