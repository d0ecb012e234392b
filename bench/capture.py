"""Capture path end to end: ``paplay`` a music file into the PulseAudio null sink, record its monitor with
``emotrack.realtime.capture.CaptureSource`` (PortAudio ALSA device ``pulse``), run the live pipeline and
measure up to OSC / WebSocket arrival at a loopback receiver process, for several blocksize x latency settings.

``t_audio`` here is CaptureSource's arrival stamp of the hop's last frame (callback time), so "capture" =
ring-buffer poll + resampler delay; the PortAudio-reported input latency (``stream_latency``) comes before that
and is reported separately (``pa_input_latency_ms``).

    export XDG_RUNTIME_DIR=/tmp/emotrack-pulse PULSE_SERVER=unix:/tmp/emotrack-pulse/pulse/native
    python -m bench.capture --blocksizes 0 256 1024 4096 --latencies low high --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp/emotrack-pulse")
os.environ.setdefault("PULSE_SERVER", f"unix:{os.environ['XDG_RUNTIME_DIR']}/pulse/native")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mca")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--provider", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--blocksizes", nargs="+", type=int, default=[0, 256, 1024, 4096])
    ap.add_argument("--latencies", nargs="+", default=["low", "high"])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--sink", default="emotrack_sink")
    ap.add_argument("--name", default="capture", help="result file bench/results/<name>.json")
    args = ap.parse_args()

    # the daemon must run before sounddevice is imported (PortAudio enumerates devices at import)
    subprocess.run(["bash", str(ROOT / "scripts" / "pulse-null-sink.sh")], check=True, capture_output=True)
    from bench.common import long_audio, save
    from bench.pipeline import Receiver, Stream, summarize, warm_up
    from emotrack.inference import ModelRunner
    from emotrack.realtime.capture import CaptureSource

    audio = long_audio(args.seconds + 15)
    runner = ModelRunner(args.model, provider=args.provider, threads=args.threads)
    warm_up(runner)
    rows = []
    for bs in args.blocksizes:
        for lat in args.latencies:
            stream = Stream(0, runner)
            n_hops = int(args.seconds / runner.card.hop_s)
            info: dict = {}

            async def go(stream=stream, bs=bs, lat=lat, n_hops=n_hops, info=info) -> dict:
                await stream.server.start()
                with tempfile.TemporaryDirectory() as tmp:
                    rx = await asyncio.to_thread(Receiver, [stream.server.port], Path(tmp) / "a.json")
                    stream.connect_osc(rx.osc_port)
                    stop = threading.Event()
                    src = CaptureSource(device="pulse", samplerate=44100, channels=2, blocksize=bs, latency=lat,
                                        stop=stop)
                    with src:
                        src.start()
                        t0 = time.perf_counter()
                        ok = await asyncio.to_thread(src.wait_first_callback, 10.0)
                        info["first_callback_s"] = round(time.perf_counter() - t0, 3)
                        await asyncio.sleep(0.3)
                        play = subprocess.Popen(["paplay", f"--device={args.sink}", str(audio)])
                        if ok:
                            await asyncio.to_thread(stream.run, src, n_hops, stop)
                        play.terminate()
                        play.wait()
                        info.update(pa_input_latency_ms=round(1e3 * (src.stream_latency or 0), 2),
                                    callbacks=src.callbacks, input_overflows=src.input_overflows,
                                    dropped=src.dropped, status_flags=src.status_flags)
                    await asyncio.sleep(0.5)
                    arrivals = await asyncio.to_thread(rx.finish)
                await stream.server.stop()
                return arrivals

            arrivals = asyncio.run(go())
            if not stream.hops:
                rows.append({"blocksize": bs, "latency": lat, "error": "no audio captured", **info})
                print(bs, lat, "no audio", info, flush=True)
                continue
            s = summarize(stream.hops, arrivals["osc"].get(0, {}), arrivals["ws"].get(0, {}), runner.card.hop_s)
            s.pop("series_ms")
            rows.append({"blocksize": bs, "latency": lat, **info, **s})
            ms = s["ms"]
            print(f"bs={bs:5d} {lat:4s} pa_latency {info['pa_input_latency_ms']:7.1f} capture p50 "
                  f"{ms['capture']['p50']:6.1f} p99 {ms['capture']['p99']:6.1f} | cb->ws arrival p50 "
                  f"{ms['audio_to_ws_arrival']['p50']:6.1f} p99 {ms['audio_to_ws_arrival']['p99']:6.1f} "
                  f"late {s['late_hops']} overflows {info['input_overflows']}", flush=True)
    save(args.name, {"model": args.model, "threads": args.threads, "seconds_per_setting": args.seconds,
                     "device": "ALSA 'pulse' <- PulseAudio null sink monitor (44.1 kHz stereo), paplay'd 4Q music",
                     "runs": rows}, provider=args.provider)


if __name__ == "__main__":
    main()
