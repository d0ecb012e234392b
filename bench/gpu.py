"""The default model on a GPU (CUDA execution provider): per-hop cost of one stream, and how many streams one
GPU serves in real time with one batched front-end call and one model call per hop tick (``MultiTracker``).

    python -m bench.gpu --counts 1 64 256 1024 2048 --ticks 40

Per tick, every stream gets one 0.5 s hop of a different stretch of real music; the tick time is the wall time
of ``MultiTracker.process`` for all of them (inputs copied to the GPU and results back, smoothing included).
Sustained = p99 tick < 500 ms. GPU memory and utilisation come from ``nvidia-smi`` sampled during each point.
Written for a lent GPU machine; not run where there is none (``bench/findings.md`` says which).
"""

from __future__ import annotations

import argparse
import subprocess
import threading
import time

import numpy as np

from bench.common import long_audio, pct, save
from emotrack.audio import load_audio
from emotrack.inference import DEFAULT_MODEL, ModelRunner
from emotrack.realtime.streams import MultiTracker
from emotrack.realtime.tracker import Tracker


def gpu_sample(stop: threading.Event, out: list[tuple[float, float]]) -> None:
    while not stop.is_set():
        try:
            query = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
            line = subprocess.run(query, capture_output=True, text=True, timeout=5).stdout.splitlines()[0]
            util, mem = (float(x) for x in line.split(","))
            out.append((util, mem))
        except (OSError, IndexError, ValueError, subprocess.TimeoutExpired):
            pass
        stop.wait(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--counts", nargs="+", type=int, default=[1, 64, 256, 1024, 2048])
    ap.add_argument("--ticks", type=int, default=40)
    ap.add_argument("--hops", type=int, default=600, help="hops of the one-stream run")
    ap.add_argument("--name", default="gpu")
    args = ap.parse_args()
    runner = ModelRunner(args.model, provider="cuda")
    audio = load_audio(long_audio(320), 16000)
    hop = runner.frontend.hop_length

    tracker = Tracker(runner, 16000)
    per_hop = []
    for i in range(args.hops):
        t0 = time.perf_counter()
        tracker.process(audio[i * hop : (i + 1) * hop])
        per_hop.append(1e3 * (time.perf_counter() - t0))
    rows = []
    for n in args.counts:
        multi = MultiTracker(runner, [16000] * n)
        offsets = (np.arange(n) * 7919 * hop) % (len(audio) - (args.ticks + 1) * hop)
        samples: list[tuple[float, float]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=gpu_sample, args=(stop, samples), daemon=True)
        sampler.start()
        ticks = []
        for t in range(args.ticks):
            blocks = [audio[o + t * hop : o + (t + 1) * hop] for o in offsets]
            t0 = time.perf_counter()
            multi.process(blocks)
            ticks.append(1e3 * (time.perf_counter() - t0))
        stop.set()
        sampler.join()
        util = [u for u, _ in samples]
        mem = [m for _, m in samples]
        row = {"streams": n, "tick_ms": pct(ticks[2:]), "sustained": bool(np.percentile(ticks[2:], 99) < 500),
               "gpu_util_pct_median": float(np.median(util)) if util else None,
               "gpu_mem_mb_max": max(mem) if mem else None}
        rows.append(row)
        print(row, flush=True)
        if not row["sustained"]:
            break
    save(args.name, {"model": args.model, "one_stream_per_hop_ms": pct(per_hop[5:]), "provider": runner.provider,
                     "max_sustained_streams_tested": max([r["streams"] for r in rows if r["sustained"]], default=0),
                     "runs": rows}, provider="cuda")


if __name__ == "__main__":
    main()
