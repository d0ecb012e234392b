"""Per-hop latency at the real 0.5 s cadence, every bundled model x thread count, side by side in ONE paced run.

Each (model, threads) stream has its own paced FileSource (same audio), Tracker, OscSender and EmotionServer, in its
own worker thread exactly like ``emotrack run``'s worker; a separate receiver process (python-osc server thread +
one websockets client per stream) stamps arrivals. Streams start staggered by hop/N so their hops do not fall at
the same instant (otherwise N streams would queue behind each other on 2 cores and we would measure contention).

    python -m bench.latency --seconds 300 --threads 1 2
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from pathlib import Path

from bench.common import bundled, long_audio, save
from bench.pipeline import Receiver, Stream, summarize, warm_up
from emotrack.inference import ModelRunner
from emotrack.realtime.sources import FileSource


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", help="model names or .onnx paths (default: every bundled model)")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--provider", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--seconds", type=float, default=300.0, help="audio per stream, played at real time")
    ap.add_argument("--audio", type=Path, help="audio file (default: 4Q clips concatenated into a scratch WAV)")
    ap.add_argument("--name", default="latency", help="result file bench/results/<name>.json")
    args = ap.parse_args()

    models = args.models or bundled()
    audio = args.audio or long_audio(args.seconds + 10)
    configs = [(m, t) for m in models for t in args.threads]
    runners, cold = [], []
    for m, t in configs:
        r = ModelRunner(m, provider=args.provider, threads=t)
        cold.append(warm_up(r))
        runners.append(r)
    hop_s = runners[0].card.hop_s
    n_hops = int(args.seconds / hop_s)
    streams = [Stream(k, r) for k, r in enumerate(runners)]
    load_before = list(__import__("os").getloadavg())

    async def run() -> dict:
        for s in streams:
            await s.server.start()
        with tempfile.TemporaryDirectory() as tmp:
            rx = await asyncio.to_thread(Receiver, [s.server.port for s in streams], Path(tmp) / "arrivals.json")
            for s in streams:
                s.connect_osc(rx.osc_port)
            threads = []
            t0 = time.perf_counter()
            for k, s in enumerate(streams):
                src = FileSource(audio, realtime=True, loop=True)
                offset = k * hop_s / len(streams)

                def body(s=s, src=src, delay=offset) -> None:
                    time.sleep(max(0.0, t0 + delay - time.perf_counter()))
                    s.run(src, n_hops)

                th = threading.Thread(target=body, daemon=True)
                th.start()
                threads.append(th)
            await asyncio.gather(*(asyncio.to_thread(th.join) for th in threads))
            await asyncio.sleep(1.0)
            arrivals = await asyncio.to_thread(rx.finish)
        for s in streams:
            await s.server.stop()
        return arrivals

    print(f"{len(configs)} streams x {args.seconds:.0f} s of {audio} at real time ...", flush=True)
    arrivals = asyncio.run(run())
    results = []
    for k, ((m, t), s) in enumerate(zip(configs, streams, strict=True)):
        summ = summarize(s.hops, arrivals["osc"].get(k, {}), arrivals["ws"].get(k, {}), hop_s)
        results.append({"model": m, "model_id": s.runner.card.model_id, "threads": t, "provider": s.runner.provider,
                        "warmup_ms": [round(x, 2) for x in cold[k]], **summ})
        ms = summ["ms"]
        print(f"{m:10s} t={t} proc p50 {ms['processing']['p50']:7.2f} p99 {ms['processing']['p99']:7.2f} "
              f"max {ms['processing']['max']:7.2f} | ws arrival p50 {ms['audio_to_ws_arrival']['p50']:7.2f} "
              f"p99 {ms['audio_to_ws_arrival']['p99']:7.2f} | late {summ['late_hops']}", flush=True)
    save(args.name, {
        "description": "audio time of a hop's last sample -> OSC bundle / WebSocket message arrival at a loopback "
                       "receiver process; staggered side-by-side paced streams; session warmed up (3 runs) first",
        "audio": f"{audio.name} (4Q clips concatenated, 44.1 kHz stereo; not committed)",
        "seconds_per_stream": args.seconds, "hop_s": hop_s, "streams": len(configs),
        "loadavg_before": [round(x, 2) for x in load_before],
        "late_definition": "t_send > t_audio + hop_s (processing finished after the next hop's audio was complete)",
        "results": results,
    }, provider=args.provider)


if __name__ == "__main__":
    main()
