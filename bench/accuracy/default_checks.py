"""Checks of the shipped default that its CV file does not hold: calibration, EMOPIA val, the "no music" state.

* **Calibration** (VGMIDI, piece-grouped CV): every test piece streamed by its fold model of the default's
  recipe (``--cv-run``: ``fold<i>_best.pt``, ``splits.json``); the per-hop spread (std) of the raw and the
  default-smoothed output beside the label spread, pooled over all test pieces, and the share of hops at
  |value| > 0.9 (saturation).
* **Music heard as music**: the fold models' ``music`` output on every test clip of 4Q, EMOPIA val and VGMIDI
  (cached features, no level gate): the share of hops from 2 s on whose music probability is >= 0.5.
* **EMOPIA val** with the bundled file itself (``emotrack evaluate`` on the official val split, which the
  final model never trained on).
* **Quiet music**: 20 EMOPIA val clips (which the final model never trained on), their rendered silent tail
  cut (hops 40 dB below the clip's loudest), scaled to -25, -35 and -45 dBFS RMS through ``emotrack analyze``:
  the share of active hops from 2 s on (the music head saw no level augmentation: the feature cache holds
  embeddings, where a gain is no simple offset).
* **No music**: silence, pink noise at -40 dBFS and an espeak-ng speech recording (20 s each, made here,
  never trained on) through ``emotrack analyze`` with no ``--model``: the share of inactive hops.

    python -m bench.accuracy.default_checks --cv-run /tmp/runs/cv --render-cache /tmp/emocache --cache /tmp/emo/cache

``--only SECTION ...`` recomputes some sections into the existing JSON (e.g. the bundled file's as soon as it is
exported, the fold models' once the CV has run); ``command`` then lists every section's command.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bench.common import command_line, machine

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "accuracy" / "default_checks.json"
SPEECH = ("Good afternoon everyone. Before the next piece begins, please find a comfortable position and rest your "
          "hands in your lap. We will listen for about ten minutes, and afterwards I will ask you what you noticed.")


def _frontend(cv_run: Path) -> str:
    """The front end the CV run's fold models read (their cached frames are loaded, not recomputed)."""
    from emotrack.training.checkpoint import load_checkpoint

    return load_checkpoint(cv_run / "fold0_best.pt")[1].frontend["name"]


def calibration(cv_run: Path, data_root: str, render_cache: str, cache: str) -> dict[str, Any]:
    from emotrack.frontends import Normalizer
    from emotrack.realtime.smoothing import DEFAULT_SMOOTHING, make_smoother
    from emotrack.training.checkpoint import load_checkpoint
    from emotrack.training.evaluate import stream_predictions, torch_predictor
    from emotrack.training.examples import load_clips, load_examples

    splits = json.loads((cv_run / "splits.json").read_text())["folds"]
    clips = load_clips(data_root, ["vgmidi"], render_cache)
    examples, _ = load_examples(clips, cache, progress=False, frontend=_frontend(cv_run))
    by_id = {e.id: e for e in examples}
    raw, smooth, labels = [], [], []
    for fold, part in enumerate(splits):
        test = [by_id[i] for i in part["test"] if i in by_id]
        model, card, _ = load_checkpoint(cv_run / f"fold{fold}_best.pt")
        preds = stream_predictions(torch_predictor(model), Normalizer.from_dict(card.normalization), test)
        for e, p in zip(test, preds, strict=True):
            s = make_smoother(DEFAULT_SMOOTHING)
            keep = np.isfinite(e.targets).all(1)
            raw.append(p[keep])
            smooth.append(np.array([s.process(float(v), float(a)) for v, a in p])[keep])
            labels.append(e.targets[keep])
    raw, smooth, labels = (np.concatenate(x) for x in (raw, smooth, labels))
    out: dict[str, Any] = {"pieces": len(clips), "hops": int(len(labels))}
    for axis, name in enumerate(("valence", "arousal")):
        out[name] = {
            "label_std": round(float(labels[:, axis].std()), 4),
            "raw_std": round(float(raw[:, axis].std()), 4),
            "smoothed_std": round(float(smooth[:, axis].std()), 4),
            "raw_std_ratio": round(float(raw[:, axis].std() / labels[:, axis].std()), 3),
            "smoothed_std_ratio": round(float(smooth[:, axis].std() / labels[:, axis].std()), 3),
            "raw_share_beyond_0.9": round(float(np.mean(np.abs(raw[:, axis]) > 0.9)), 4),
        }
    return out


def music_active(cv_run: Path, data_root: str, render_cache: str, cache: str) -> dict[str, Any]:
    import torch

    from emotrack.frontends import Normalizer
    from emotrack.training.checkpoint import load_checkpoint
    from emotrack.training.examples import load_clips, load_examples
    from emotrack.training.trainer import slide_contexts

    splits = json.loads((cv_run / "splits.json").read_text())["folds"]
    clips = load_clips(data_root, ["4q", "vgmidi", "emopia"], render_cache)
    examples, _ = load_examples(clips, cache, progress=False, frontend=_frontend(cv_run))
    dataset = {c.id: c.dataset for c in clips}
    by_id = {e.id: e for e in examples}
    shares: dict[str, list[float]] = {}
    seen: set[str] = set()
    for fold, part in enumerate(splits):
        model, card, _ = load_checkpoint(cv_run / f"fold{fold}_best.pt")
        norm = Normalizer.from_dict(card.normalization)
        model.eval()
        for cid in part["test"]:
            if cid in seen and dataset[cid] == "emopia":  # EMOPIA val is every fold's test set: count it once
                continue
            seen.add(cid)
            with torch.no_grad():
                emb = model.encode(torch.from_numpy(norm(by_id[cid].frames)).unsqueeze(0))[0]
                ctx, mask = slide_contexts(emb, model.context_frames)
                music = model.temporal(ctx, mask)["music"][:, 0].numpy()
            shares.setdefault(dataset[cid], []).append(float(np.mean(music[4:] >= 0.5)))
    return {name: {"clips": len(v), "active_share_mean": round(float(np.mean(v)), 4),
                   "clips_below_90pct": int(np.sum(np.array(v) < 0.9))} for name, v in shares.items()}


def emopia_val(data_root: str, render_cache: str, cache: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "emotrack", "evaluate", "mca-musicnn", "--data-root", data_root, "--datasets",
               "emopia", "--render-cache", render_cache, "--cache", cache, "--out", f"{tmp}/e.json", "--quiet"]
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        result = json.loads(Path(f"{tmp}/e.json").read_text())
    q = result["quadrant"]
    return {"model": result["model"], "n_clips": result["n_clips"], "weighted_f1": round(q["weighted_f1"], 4),
            "accuracy": round(q["accuracy"], 4), "command": " ".join(["emotrack", *cmd[3:-3], "--out", "E.json"])}


def nonmusic() -> dict[str, Any]:
    from emotrack.csvout import read_csv
    from emotrack.data.nonmusic import colored_noise, scale_to_dbfs, speech

    sr = 16000
    rng = np.random.default_rng(7)
    audio = {
        "silence": np.zeros(20 * sr, np.float32),
        "pink noise -40 dBFS": scale_to_dbfs(colored_noise(20 * sr, 1.0, rng), -40.0),
        "speech (espeak-ng, -20 dBFS)": scale_to_dbfs(speech(SPEECH, sr, voice="en"), -20.0),
    }
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for i, (name, x) in enumerate(audio.items()):
            paths[name] = Path(tmp) / f"case{i}.wav"
            sf.write(paths[name], x, sr)
        subprocess.run([sys.executable, "-m", "emotrack", "analyze", *map(str, paths.values()), "-o", tmp, "--quiet"],
                       check=True, cwd=ROOT)
        for name, path in paths.items():
            d = read_csv(path.with_suffix(".csv"))
            active = np.array(d["active"])
            out[name] = {"hops": int(len(active)), "inactive_share": round(float(np.mean(active == 0)), 4),
                         "mean_confidence": round(float(np.mean(d["confidence"])), 4)}
    return out


def quiet_music(data_root: str, render_cache: str, n: int = 20) -> dict[str, Any]:
    from emotrack.audio import load_audio, rms_dbfs
    from emotrack.csvout import read_csv
    from emotrack.data.nonmusic import scale_to_dbfs
    from emotrack.training.examples import load_clips

    clips = load_clips(data_root, ["emopia"], render_cache, emopia_split="val")[:n]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for level in (-25, -35, -45):
            paths = []
            for i, c in enumerate(clips):
                x = load_audio(c.audio_path, 16000)
                hop_db = [rms_dbfs(x[k : k + 8000]) for k in range(0, len(x) - 7999, 8000)]
                keep = [k for k, db in enumerate(hop_db) if db > max(hop_db) - 40]
                paths.append(Path(tmp) / f"q{level}_{i}.wav")
                sf.write(paths[-1], scale_to_dbfs(x[: (keep[-1] + 1) * 8000], level), 16000)
            subprocess.run([sys.executable, "-m", "emotrack", "analyze", *map(str, paths), "-o", tmp, "--quiet"],
                           check=True, cwd=ROOT)
            shares = [float(np.mean(np.array(read_csv(p.with_suffix(".csv"))["active"])[4:] == 1)) for p in paths]
            out[f"{level} dBFS"] = {"clips": len(paths), "active_share_mean": round(float(np.mean(shares)), 4),
                                    "active_share_min": round(float(np.min(shares)), 4)}
    return out


SECTIONS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "calibration_vgmidi_cv": lambda a: calibration(a.cv_run, a.data_root, a.render_cache, a.cache),
    "music_active_cv": lambda a: music_active(a.cv_run, a.data_root, a.render_cache, a.cache),
    "emopia_val_bundled": lambda a: emopia_val(a.data_root, a.render_cache, a.cache),
    "nonmusic_bundled": lambda a: nonmusic(),
    "quiet_music": lambda a: quiet_music(a.data_root, a.render_cache),
}
"""The sections of the JSON: fold-model checks (``--cv-run``) and checks of the bundled file."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cv-run", type=Path, help="the default recipe's CV run (fold<i>_best.pt, splits.json)")
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--render-cache", default="/tmp/emocache")
    ap.add_argument("--cache", default="/tmp/emo/cache")
    ap.add_argument("--only", nargs="+", choices=list(SECTIONS),
                    help="recompute these sections into the existing JSON (the rest stays)")
    args = ap.parse_args()
    sections = {name: SECTIONS[name] for name in (args.only or SECTIONS)}
    if args.cv_run is None and any(name.endswith("_cv") for name in sections):
        ap.error(f"--cv-run is needed for {', '.join(n for n in sections if n.endswith('_cv'))}")
    doc = json.loads(OUT.read_text()) if args.only else {}
    for name, section in sections.items():
        doc[name] = section(args)
        doc.setdefault("section_commands", {})[name] = command_line()
    doc["machine"] = machine()
    doc["command"] = " && ".join(dict.fromkeys(doc["section_commands"].values()))  # one, unless run in sections
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps({k: v for k, v in doc.items() if k != "machine"}, indent=1))


if __name__ == "__main__":
    main()
