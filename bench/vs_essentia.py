"""Offline analysis side by side with the peer a user would pick instead: ``emotrack analyze`` (default model,
one process per core and one process; the light ``mca``) against Essentia's MusiCNN + emoMusic pipeline
(``../shared/peers/essentia``, TensorFlow on every core; for benchmarks only, never bundled) on the same 4Q clips,
whole commands (start-up, decoding, CSV writing), runs alternating, median of ``--repeats``.

    python -m bench.vs_essentia --clips 40 --repeats 3 --essentia-python /tmp/essvenv/bin/python

Peak memory is the largest single process's maximum RSS (``wait4``), so for ``--jobs 2`` it is one worker's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.common import fourq_clips, save

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT.parent / "shared" / "peers" / "essentia" / "analyze.py"


def variants(python_peer: str) -> dict[str, list[str]]:
    emotrack = [sys.executable, "-m", "emotrack", "analyze", "--quiet"]
    return {
        "emotrack analyze (default mca-musicnn, --jobs 2)": [*emotrack, "--jobs", "2"],
        "emotrack analyze (default mca-musicnn, --jobs 1)": [*emotrack, "--jobs", "1"],
        "emotrack analyze --model mca (light, --jobs 2)": [*emotrack, "--model", "mca", "--jobs", "2"],
        "Essentia MusiCNN + emoMusic (TensorFlow)": [python_peer, str(PEER), "analyze", "--model", "emomusic"],
    }


def timed(cmd: list[str], clips: list[Path]) -> tuple[float, float, int]:
    """Wall seconds, largest process peak RSS (MB) and return code of one whole command."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = subprocess.Popen([*cmd, *map(str, clips), "--out", tmp], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        written = len(list(Path(tmp).glob("*.csv")))
    if written != len(clips):
        raise SystemExit(f"{cmd[:4]} wrote {written} of {len(clips)} CSVs")
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--essentia-python", default="/tmp/essvenv/bin/python",
                    help="a Python with essentia-tensorflow (the peer README's venv)")
    ap.add_argument("--name", default="vs_essentia")
    args = ap.parse_args()
    clips = fourq_clips(args.clips)
    audio_s = sum(sf.info(str(c)).duration for c in clips)
    runs: dict[str, list[tuple[float, float]]] = {}
    cmds = variants(args.essentia_python)
    for r in range(args.repeats):
        for label, cmd in cmds.items():  # alternating: every repeat runs each variant once
            wall, rss, rc = timed(cmd, clips)
            if rc != 0:
                raise SystemExit(f"{label} exited {rc}")
            runs.setdefault(label, []).append((wall, rss))
            print(f"repeat {r + 1}: {label}: {wall:.2f} s ({audio_s / wall:.1f}x), peak {rss:.0f} MB", flush=True)
    rows = []
    for label, values in runs.items():
        walls = [w for w, _ in values]
        shown = " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmds[label]))
        rows.append({"variant": label, "command": shown + " <clips> --out DIR", "wall_s": walls,
                     "median_wall_s": round(float(np.median(walls)), 2),
                     "realtime_factor": round(audio_s / float(np.median(walls)), 1),
                     "peak_rss_mb": round(max(m for _, m in values), 1)})
    peer = next(r for r in rows if r["variant"].startswith("Essentia"))
    for row in rows:
        row["vs_essentia"] = round(peer["median_wall_s"] / row["median_wall_s"], 2)
    save(args.name, {"clips": len(clips), "audio_s": round(audio_s, 1), "repeats": args.repeats,
                     "clip_set": "the first N 4Q mp3 clips round-robin over Q1..Q4 (bench.common.fourq_clips)",
                     "rows": rows})


if __name__ == "__main__":
    main()
