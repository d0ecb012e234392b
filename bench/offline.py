"""Offline speed of ``emotrack analyze`` (real-time factor = seconds of audio / wall second) on 4Q clips, with the
file list split over 1 and over 2 ``emotrack analyze`` processes running at once. Wall time is the whole command
(process start, model load, mp3 decode, CSV writing), i.e. what a user waits for.

    python -m bench.offline --clips 80 --procs 1 2 --model mca
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

from bench.common import fourq_clips, save

ROOT = Path(__file__).resolve().parent.parent


def run(clips: list[Path], procs: int, model: str, provider: str, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmds = []
        for i in range(procs):
            part = clips[i::procs]
            cmds.append([sys.executable, "-m", "emotrack", "analyze", *map(str, part), "--out", f"{tmp}/{i}",
                         "--model", model, "--provider", provider, "--threads", str(threads), "--quiet"])
        t0 = time.perf_counter()
        ps = [subprocess.Popen(c, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in cmds]
        errs = [p.communicate()[1] for p in ps]
        wall = time.perf_counter() - t0
        n_csv = len(list(Path(tmp).glob("*/*.csv")))
    return {"procs": procs, "threads_per_proc": threads, "wall_s": round(wall, 2), "csv_written": n_csv,
            "returncodes": [p.returncode for p in ps], "stderr_tail": [e[-300:] for e in errs if e.strip()],
            "command_template": " ".join(cmds[0][1:4]) + " <files> --out DIR " + " ".join(cmds[0][-7:])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=80, help="number of 4Q clips (round-robin over Q1..Q4)")
    ap.add_argument("--procs", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--model", default="mca")
    ap.add_argument("--name", default="offline", help="result file bench/results/<name>.json")
    ap.add_argument("--threads", type=int, default=1, help="ORT threads per process")
    ap.add_argument("--provider", default="cpu", choices=["cpu", "cuda", "auto"])
    args = ap.parse_args()
    clips = fourq_clips(args.clips)
    audio_s = sum(sf.info(str(c)).duration for c in clips)
    rows = []
    for n in args.procs:
        r = run(clips, n, args.model, args.provider, args.threads)
        r["audio_s"] = round(audio_s, 1)
        r["realtime_factor"] = round(audio_s / r["wall_s"], 1)
        rows.append(r)
        print(f"{n} proc(s): {audio_s:.0f} s audio in {r['wall_s']} s -> {r['realtime_factor']}x real time "
              f"({r['csv_written']} CSVs)", flush=True)
    save(args.name, {"model": args.model, "clips": len(clips), "clip_set": "4Q (/work/shared/data/4q) mp3 clips, "
                     "first N round-robin over Q1..Q4 sorted by name", "runs": rows}, provider=args.provider)


if __name__ == "__main__":
    main()
