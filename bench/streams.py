"""Many streams in one process at the real cadence: N Trackers fed the same paced audio (worst case: every
stream's hop completes at the same instant), each with its own resampler, front end, context and smoother.

Modes: ``serial`` - N ``Tracker`` objects, two ONNX Runtime calls (front-end network, model) per stream per hop;
``batched`` - one :class:`emotrack.realtime.streams.MultiTracker`: ONE front-end call (``FrontEnd.process_many``)
and ONE model call on ``[N, 20, ...]`` per hop boundary.
Per-hop latency of stream k = time its result is ready minus the audio time of the hop's last sample, so it
includes waiting for streams processed before it. Sustained = p99 of that < hop (500 ms) and no late hop.

    python -m bench.streams --counts 1 16 64 128 256 --modes serial batched --seconds 15
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np

from bench.common import long_audio, pct, save
from emotrack.inference import DEFAULT_MODEL, ModelRunner
from emotrack.realtime.smoothing import make_smoother
from emotrack.realtime.sources import FileSource
from emotrack.realtime.streams import MultiTracker
from emotrack.realtime.tracker import Tracker


def make_trackers(runner: ModelRunner, n: int, rate: int, cls: type[Tracker]) -> list[Tracker]:
    out = []
    for _ in range(n):
        t = cls(runner, rate, make_smoother("ema"))
        t.frontend = copy.deepcopy(runner.frontend)  # own STFT history per stream
        t.reset()
        out.append(t)
    return out


def run(runner: ModelRunner, audio, n: int, mode: str, seconds: float) -> dict:
    src = FileSource(audio, realtime=True, loop=True)
    trackers = make_trackers(runner, n, src.sample_rate, Tracker) if mode == "serial" else []
    multi = MultiTracker(runner, [src.sample_rate] * n, [make_smoother("ema") for _ in range(n)])
    lat, per_boundary = [], []
    deadline = time.perf_counter() + seconds
    busy = 0.0
    t_start = time.perf_counter()
    for block, t_last in src:
        t0 = time.perf_counter()
        if mode == "serial":
            done = []
            for tr in trackers:
                for r in tr.process(block, t_last):
                    done.append((r.t_audio, time.perf_counter()))
            lat += [1e3 * (b - a) for a, b in done]
        else:
            results = [r for stream in multi.process([block] * n, t_last) for r in stream]
            t_done = time.perf_counter()
            lat += [1e3 * (t_done - r.t_audio) for r in results]
        t1 = time.perf_counter()
        busy += t1 - t0
        if len(lat) and (len(lat) % n == 0) and t1 - t0 > 0.001:
            per_boundary.append(1e3 * (t1 - t0))
        if t1 > deadline:
            break
    src.stop.set()
    wall = time.perf_counter() - t_start
    a = np.array(lat)
    hop_ms = 1e3 * runner.card.hop_s
    return {"streams": n, "mode": mode, "hops": int(a.size), "latency_ms": pct(a),
            "late_hops": int((a > hop_ms).sum()), "busy_fraction": round(busy / wall, 3),
            "boundary_ms": pct(per_boundary), "sustained": bool(a.size and np.percentile(a, 99) < hop_ms
                                                                 and (a > hop_ms).sum() == 0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--counts", nargs="+", type=int, default=[1, 16, 64, 128, 256])
    ap.add_argument("--modes", nargs="+", default=["serial", "batched"], choices=["serial", "batched"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=15.0, help="real-time seconds per (mode, N)")
    ap.add_argument("--provider", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--name", default="streams", help="result file bench/results/<name>.json")
    args = ap.parse_args()
    runner = ModelRunner(args.model, provider=args.provider, threads=args.threads)
    audio = long_audio(60)
    rows = []
    for mode in args.modes:
        for n in args.counts:
            r = run(runner, audio, n, mode, args.seconds)
            rows.append(r)
            print(f"{mode:8s} N={n:4d} p50 {r['latency_ms']['p50']:8.1f} p99 {r['latency_ms']['p99']:8.1f} ms "
                  f"late {r['late_hops']} busy {r['busy_fraction']:.2f} sustained {r['sustained']}", flush=True)
            if not r["sustained"]:
                break
    best = {m: max([r["streams"] for r in rows if r["mode"] == m and r["sustained"]], default=0) for m in args.modes}
    save(args.name, {"model": args.model, "threads": args.threads, "seconds_per_point": args.seconds,
                     "max_sustained_streams_tested": best, "runs": rows}, provider=args.provider)


if __name__ == "__main__":
    main()
