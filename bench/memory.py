"""Long-run memory of ``emotrack analyze``: does peak RSS grow with the file's length? (issue 15, not a timed test)

``analyze`` streams each file block by block and its hop results straight to the CSV, so a 2-hour file should
peak within 10 % of a 2-minute one. Both files are the bundled example recording repeated, each repetition
starting at a random point and with a random gain (a fixed seed), written as FLAC in chunks so the generator
never holds more than one repetition; they go to ``$BENCH_SCRATCH/memory`` (default ``/tmp/emotrack-bench``)
and are never committed.

Each file gets a fresh ``python -m emotrack analyze FILE --out DIR --quiet --jobs 1`` (one process: with one
job ``analyze`` starts no workers). Its peak RSS is the kernel's ``ru_maxrss`` for that child, read with
``os.wait4`` on its pid, the same way for every file; ``VmRSS`` is also sampled four times a second from
``/proc/PID/status`` to show whether memory creeps during the run. Rows of each CSV are checked against the hops
the audio holds (one per complete 0.5 s of audio at the model's rate).

    python -m bench.memory --seconds 120 7200
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from bench.common import RESULTS, SCRATCH, save

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.10
"""The issue's target: the long file's peak within 10 % of the short file's."""


def make_audio(seconds: float, path: Path, seed: int = 0) -> Path:
    """Write ``seconds`` of the example recording, repeated with variations, to ``path`` as FLAC (cached by name).

    Repetitions start at a random offset and get a random gain in [0.6, 1.0], so no two stretches of the long
    file are bit-identical; only one repetition (the 65 s recording) is in memory at a time.
    """
    if path.exists() and sf.info(str(path)).frames >= int(seconds * sf.info(str(path)).samplerate):
        return path
    from emotrack.assets import EXAMPLE_AUDIO

    source, rate = sf.read(str(EXAMPLE_AUDIO), dtype="float32", always_2d=True)
    rng = np.random.default_rng(seed)
    total = int(seconds * rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.flac")
    with sf.SoundFile(str(tmp), "w", samplerate=rate, channels=source.shape[1], format="FLAC",
                      subtype="PCM_16") as out:
        written = 0
        while written < total:
            piece = np.roll(source, -int(rng.integers(len(source))), axis=0) * np.float32(rng.uniform(0.6, 1.0))
            piece = piece[: total - written]
            out.write(piece)
            written += len(piece)
    tmp.replace(path)
    return path


def expected_hops(path: Path, model_rate: int, hop_s: float) -> int:
    """Complete hops in the file: its frames at the model's rate, in whole hops (a final partial one is dropped)."""
    info = sf.info(str(path))
    hop = int(round(model_rate * hop_s))
    return (info.frames * model_rate // info.samplerate) // hop


def _vm_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def measure(audio: Path, model: str, threads: int, interval: float = 0.25) -> dict[str, Any]:
    """Run one ``analyze`` of ``audio`` and return its peak RSS (``ru_maxrss`` via ``wait4``), wall time, RSS trace."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "emotrack", "analyze", str(audio), "--out", out, "--quiet", "--jobs", "1",
               "--model", model, "--threads", str(threads)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        trace: list[tuple[float, float]] = []
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss = _vm_rss_mib(proc.pid)
            if rss is not None:
                trace.append((round(time.perf_counter() - t0, 1), round(rss, 1)))
            time.sleep(interval)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        csv = Path(out) / f"{audio.stem}.csv"
        rows = max(0, len(csv.read_text().splitlines()) - 1) if csv.exists() else None
    return {
        "returncode": proc.returncode,
        "stderr_tail": err[-500:],
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "wall_s": round(wall, 1),
        "rows": rows,
        "rss_trace_mib": _thin(trace),
        "command": " ".join(["python", *cmd[1:4], audio.name, "--out", "DIR", *cmd[7:]]),
    }


def _thin(trace: list[tuple[float, float]], points: int = 40) -> list[tuple[float, float]]:
    """At most ``points`` samples of the RSS trace, evenly spaced, the last one kept."""
    if len(trace) <= points:
        return trace
    idx = np.linspace(0, len(trace) - 1, points).round().astype(int)
    return [trace[i] for i in idx]


def steady_range(run: dict[str, Any]) -> tuple[float, float]:
    """Lowest and highest VmRSS sampled between 10 % and 90 % of a run's wall time (start-up and exit left out)."""
    wall = run["wall_s"]
    inside = [rss for t, rss in run["rss_trace_mib"] if 0.1 * wall <= t <= 0.9 * wall]
    return (min(inside), max(inside)) if inside else (math.nan, math.nan)


def _markdown(payload: dict[str, Any], command: str) -> str:
    rows = payload["files"]
    lines = [
        "# `emotrack analyze` memory over file length (issue 15)",
        "",
        f"Command: `{command}` on {payload['machine_line']}.",
        "",
        "| audio | peak RSS (MiB) | wall (s) | CSV rows | expected rows |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['audio_s']:.0f} s ({r['audio_s'] / 60:.1f} min) | {r['peak_rss_mib']:.1f} | "
                     f"{r['wall_s']:.0f} | {r['rows']} | {r['expected_rows']} |")
    low, high = steady_range(rows[-1])
    lines += [
        "",
        f"Peak RSS is `ru_maxrss` of each `analyze` process (`os.wait4`), one fresh process per file, model "
        f"`{payload['model']}`. Longest / shortest peak: **{payload['peak_ratio']:.3f}** "
        f"(target <= {TARGET_RATIO:.2f}): **{payload['verdict']}**. From 10 % to 90 % of the longest run's wall "
        f"time its VmRSS stayed within {low:.1f}-{high:.1f} MiB (samples: `rss_trace_mib` in "
        f"`{payload['name']}.json`).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", nargs="+", type=float, default=[120, 7200], help="audio lengths, shortest first")
    ap.add_argument("--model", default="mca-musicnn", help="model for analyze (default: the bundled default)")
    ap.add_argument("--threads", type=int, default=1, help="ORT threads of analyze")
    ap.add_argument("--name", default="memory", help="result files bench/results/<name>.json and .md")
    args = ap.parse_args()

    from bench.common import command_line, cpu_model
    from emotrack.inference import ModelRunner

    card = ModelRunner(args.model, provider="cpu").card
    files = []
    for seconds in sorted(args.seconds):
        audio = make_audio(seconds, SCRATCH / "memory" / f"example_loop_{int(seconds)}s.flac")
        print(f"{seconds:.0f} s: analyzing {audio}", flush=True)
        r = measure(audio, args.model, args.threads)
        r["audio_s"] = round(sf.info(str(audio)).duration, 1)
        r["expected_rows"] = expected_hops(audio, card.sample_rate, card.hop_s)
        files.append(r)
        print(f"  peak RSS {r['peak_rss_mib']} MiB, {r['wall_s']} s, rows {r['rows']}/{r['expected_rows']}, "
              f"exit {r['returncode']}", flush=True)
    ratio = files[-1]["peak_rss_mib"] / files[0]["peak_rss_mib"]
    ok = ratio <= TARGET_RATIO and all(r["returncode"] == 0 and r["rows"] == r["expected_rows"] for r in files)
    payload = {
        "name": args.name,
        "model": args.model,
        "audio": "bundled example recording repeated (random start, gain 0.6-1.0, seed 0), 44.1 kHz stereo FLAC",
        "measure": "ru_maxrss of one fresh `analyze --jobs 1` process per file (os.wait4); VmRSS sampled every 0.25 s",
        "files": files,
        "peak_ratio": round(ratio, 4),
        "target_ratio": TARGET_RATIO,
        "verdict": "pass" if ok else "FAIL",
        "machine_line": f"{cpu_model()}, {os.cpu_count()} cores",
    }
    save(args.name, payload)
    md = RESULTS / f"{args.name}.md"
    md.write_text(_markdown(payload, command_line()))
    print(f"wrote {md}; peak ratio {ratio:.3f}: {payload['verdict']}", file=sys.stderr)


if __name__ == "__main__":
    main()
