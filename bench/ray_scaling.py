"""Catalogue throughput (issue 19): ``emotrack analyze --engine ray`` with 1 and 2 local Ray workers side by side
with plain ``emotrack analyze --jobs 1`` / ``--jobs 2``, in one run, on the same ~10 minutes of audio.

Throughput is audio hours per hour of wall time (= the real-time factor) of the whole command as a user types it
(process start, model load, Ray start-up, decoding, CSV writing), each variant on a fresh output folder, variants
interleaved over ``--repeats`` rounds, medians reported. For Ray the start-up (embedded Ray + one model per
worker, from the command's own summary line) is also reported apart, with the throughput of the rest: what a
long catalogue job converges to. The audio is the bundled example looped into WAV files in the bench scratch
folder (never committed).

    python -m bench.ray_scaling --files 10 --seconds 60 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bench.common import RESULTS, SCRATCH, command_line, save

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"in ([\d.]+) s on (\d+) Ray workers? \(([\d.]+) s of it starting them\)")


def make_audio(files: int, seconds: float) -> list[Path]:
    """``files`` WAVs of ``seconds`` each: the bundled example looped, each file starting at another offset."""
    from emotrack.assets import EXAMPLE_AUDIO

    folder = SCRATCH / "ray_scaling"
    folder.mkdir(parents=True, exist_ok=True)
    data, rate = sf.read(str(EXAMPLE_AUDIO), dtype="float32", always_2d=True)
    n = int(seconds * rate)
    paths = []
    for i in range(files):
        path = folder / f"loop{i:02d}_{int(seconds)}s.wav"
        if not path.exists():
            start = (i * 7 * rate) % len(data)
            reps = -(-(start + n) // len(data))
            sf.write(str(path), np.tile(data, (reps, 1))[start:start + n], rate, subtype="PCM_16")
        paths.append(path)
    return paths


def run_once(files: list[Path], engine: str, jobs: int, model: str | None) -> dict[str, Any]:
    """One whole ``emotrack analyze`` command on a fresh output folder: wall time and Ray's start-up."""
    with tempfile.TemporaryDirectory(dir=SCRATCH) as out:
        cmd = [sys.executable, "-m", "emotrack", "analyze", *map(str, files), "--out", out, "--jobs", str(jobs),
               "--provider", "cpu", "--quiet"]
        cmd += ["--engine", "ray"] if engine == "ray" else []
        cmd += ["--model", model] if model else []
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[2:6])} ... failed ({proc.returncode}): {proc.stderr[-500:]}")
        csvs = {p.name: p.read_bytes() for p in Path(out).glob("*.csv")}
    found = SUMMARY.search(proc.stderr)
    if engine == "ray" and not found:
        raise SystemExit(f"no summary line from the Ray run: {proc.stderr[-500:]}")
    job = {"job_s": float(found.group(1)), "startup_s": float(found.group(3))} if found else {}
    return {"wall_s": wall, **job, "csvs": csvs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10, help="number of audio files (default: 10)")
    ap.add_argument("--seconds", type=float, default=60.0, help="seconds of audio per file (default: 60)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds over all variants; medians reported (default: 3)")
    ap.add_argument("--model", help="model (default: the bundled default)")
    ap.add_argument("--name", default="ray_scaling", help="result files bench/results/<name>.json and .md")
    args = ap.parse_args()

    import ray

    load_before = [round(x, 2) for x in os.getloadavg()]
    files = make_audio(args.files, args.seconds)
    audio_s = sum(sf.info(str(p)).duration for p in files)
    variants = [(engine, n) for n in args.workers for engine in ("local", "ray")]
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {v: [] for v in variants}
    reference: dict[str, bytes] | None = None
    for r in range(args.repeats):
        for engine, n in variants:
            res = run_once(files, engine, n, args.model)
            reference = reference or res["csvs"]
            assert res["csvs"] == reference, f"{engine} x{n}: CSVs differ from the first run's"
            runs[(engine, n)].append(res)
            print(f"round {r + 1}: {engine:5s} x{n}: {res['wall_s']:.1f} s "
                  f"({audio_s / res['wall_s']:.1f} audio h / h)", flush=True)

    rows = []
    for (engine, n), results in runs.items():
        wall = statistics.median(x["wall_s"] for x in results)
        row = {"engine": engine, "workers": n, "wall_s_runs": [round(x["wall_s"], 2) for x in results],
               "wall_s_median": round(wall, 2), "audio_hours_per_hour": round(audio_s / wall, 1)}
        if engine == "ray":  # the job's own time (summary line): Ray start + models, then the files
            start = statistics.median(x["startup_s"] for x in results)
            steady = statistics.median(x["job_s"] - x["startup_s"] for x in results)
            row |= {"ray_startup_s_median": round(start, 2), "ray_files_s_median": round(steady, 2),
                    "audio_hours_per_hour_after_startup": round(audio_s / steady, 1)}
        rows.append(row)
    payload = {"loadavg_before_1_5_15": load_before, "audio_s": round(audio_s, 1), "files": len(files),
               "model": args.model or "default (mca-musicnn)",
               "audio": f"{len(files)} WAVs of {args.seconds:g} s (44.1 kHz stereo PCM16): the bundled example looped",
               "ray": ray.__version__, "repeats": args.repeats, "csvs_identical_across_variants": True,
               "command_template": "python -m emotrack analyze FILES --out DIR --jobs N --provider cpu --quiet "
                                   "[--engine ray]", "rows": rows,
               "gpu": "not run: no GPU machine was lent to this task (rerun with --gpus-per-worker on one)"}
    path = save(args.name, payload)
    (RESULTS / f"{args.name}.md").write_text(markdown(payload, path))


def markdown(p: dict[str, Any], path: Path) -> str:
    """The table of ``bench/results/ray_scaling.md``."""
    import json

    machine = json.loads(path.read_text())["machine"]
    lines = [
        "# Catalogue throughput: `analyze --engine ray` vs plain `analyze` (issue 19)", "",
        f"Command: `{command_line()}` on {machine['cpu_model']}, {machine['cores']} cores (load average 1/5/15 min "
        f"{p['loadavg_before_1_5_15']} before, {machine['loadavg_1_5_15']} after: the machine is shared), "
        f"Ray {p['ray']}, {p['repeats']} interleaved rounds, medians.", "",
        f"Audio: {p['audio']}, {p['audio_s'] / 60:.1f} min in all; model {p['model']}, ONNX Runtime on CPU, 1 thread "
        "per worker. Whole commands (`" + p["command_template"] + "`), fresh output folder each.", "",
        "| engine | workers | whole command (s, median) | audio h / h | Ray start-up (s) | files on Ray (s) "
        "| audio h / h after start-up |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in p["rows"]:
        ray_cols = ([f"{r['ray_startup_s_median']:.1f}", f"{r['ray_files_s_median']:.1f}",
                     f"{r['audio_hours_per_hour_after_startup']:.1f}"] if r["engine"] == "ray" else ["–"] * 3)
        lines.append(f"| {r['engine']} | {r['workers']} | {r['wall_s_median']:.1f} | {r['audio_hours_per_hour']:.1f} | "
                     + " | ".join(ray_cols) + " |")
    lines += ["", "All variants wrote byte-identical CSVs. *Whole command* is what a user waits for; for Ray it "
              "holds Python and Ray imports, Ray's start-up (embedded Ray, then one model per worker), the files, and "
              "Ray's shutdown. Start-up and shutdown are paid once per job, so on a long catalogue the last column "
              "(audio over the *files on Ray* time, from the command's summary line) is what Ray converges to. "
              f"GPU row: {p['gpu']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
