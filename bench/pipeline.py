"""The live pipeline as ``emotrack run`` wires it (emotrack/realtime/live.py), instrumented per hop, plus a
real OSC + WebSocket receiver in a separate process.

Clocks: ``time.perf_counter()`` is CLOCK_MONOTONIC on Linux, one clock for all processes of the machine, so the
receiver's arrival stamps and the sender's stage stamps are directly comparable. As a cross-check the receiver
also records ``time.time()`` on WebSocket arrival, to compare with the message's own ``wall_time``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from emotrack.inference import ModelRunner
from emotrack.realtime.messages import HopMessage, hello_json, to_json
from emotrack.realtime.osc import OscSender
from emotrack.realtime.smoothing import make_smoother
from emotrack.realtime.tracker import Tracker
from emotrack.realtime.websocket import EmotionServer

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------------------------- receiver process
def receiver_main(ws_ports: list[int], out: Path) -> None:
    """Run in its own process: one python-osc server thread (all streams, address prefix /bench/c<k>) and one
    websockets client per stream; print ``ready <osc_port>`` once all are connected, dump arrivals on stdin EOF."""
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import BlockingOSCUDPServer
    from websockets.asyncio.client import connect

    osc: dict[int, dict[int, float]] = {k: {} for k in range(len(ws_ports))}
    ws: dict[int, dict[int, list[float]]] = {k: {} for k in range(len(ws_ports))}

    def on_osc(address: str, *args: Any) -> None:
        t = time.perf_counter()
        if address.endswith("/seq"):
            k = int(address.split("/")[2][1:])
            osc[k][int(args[0])] = t

    disp = Dispatcher()
    disp.set_default_handler(on_osc)
    server = BlockingOSCUDPServer(("127.0.0.1", 0), disp)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    async def client(k: int, port: int, ready: asyncio.Event, done: asyncio.Event) -> None:
        async with connect(f"ws://127.0.0.1:{port}", max_queue=None) as conn:
            await conn.recv()  # hello
            ready.set()
            while not done.is_set():
                try:
                    text = await asyncio.wait_for(conn.recv(), 0.5)
                except TimeoutError:
                    continue
                except Exception:
                    return
                t, wall = time.perf_counter(), time.time()
                msg = json.loads(text)
                if msg.get("type") == "emotion":
                    ws[k][int(msg["seq"])] = [t, wall, float(msg["wall_time"])]

    async def main() -> None:
        done = asyncio.Event()
        readies = [asyncio.Event() for _ in ws_ports]
        tasks = [asyncio.create_task(client(k, p, readies[k], done)) for k, p in enumerate(ws_ports)]
        for r in readies:
            await r.wait()
        print(f"ready {server.server_address[1]}", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # EOF = stop
        done.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    server.shutdown()
    out.write_text(json.dumps({"osc": osc, "ws": ws}))


class Receiver:
    """Start the receiver process for ``ws_ports``; ``osc_port`` is where streams send; ``finish()`` -> arrivals."""

    def __init__(self, ws_ports: list[int], out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.pipeline", "receive", str(out), *map(str, ws_ports)],
            cwd=HERE.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError("receiver failed to start")
        self.osc_port = int(line[1])

    def finish(self) -> dict[str, Any]:
        self.proc.stdin.close()
        self.proc.wait(30)
        data = json.loads(self.out.read_text())
        osc = {int(k): {int(s): t for s, t in v.items()} for k, v in data["osc"].items()}
        ws = {int(k): {int(s): t for s, t in v.items()} for k, v in data["ws"].items()}
        return {"osc": osc, "ws": ws}


# ----------------------------------------------------------------------------------------------- instrumented hop loop
def warm_up(runner: ModelRunner, n: int = 3) -> list[float]:
    """Run the session on zeros; returns ms per call (the first is the cold call ``emotrack run`` pays on hop 0)."""
    t = Tracker(runner, runner.frontend.sample_rate)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        runner.run(t._context.frames, t._context.mask)
        out.append(1e3 * (time.perf_counter() - t0))
    return out


class Stream:
    """One model on one source, sending every hop to OSC and its own EmotionServer, like live.py's worker."""

    def __init__(self, k: int, runner: ModelRunner, smoothing: str = "ema") -> None:
        self.k = k
        self.runner = runner
        self.smoother = make_smoother(smoothing)
        hello = hello_json(
            model=runner.card.model_id, hop_s=runner.card.hop_s, sample_rate=runner.card.sample_rate,
            smoothing=self.smoother.describe(),
        )
        self.server = EmotionServer("127.0.0.1", 0, hello=hello)
        self.osc: OscSender | None = None
        self.hops: list[dict[str, float]] = []

    def connect_osc(self, port: int) -> None:
        self.osc = OscSender([("127.0.0.1", port)], prefix=f"/bench/c{self.k}")

    def run(self, source: Any, n_hops: int, stop: threading.Event | None = None) -> None:
        """Worker thread body: pull blocks, run hops, send, until ``n_hops`` hops or the source ends."""
        tracker = Tracker(self.runner, source.sample_rate, self.smoother)
        stream = iter(source)
        model_id = self.runner.card.model_id
        while len(self.hops) < n_hops and not (stop is not None and stop.is_set()):
            item = next(stream, None)
            if item is None:
                break
            block, t_last = item
            for r in tracker.process(block, t_last):
                latency = r.latency_ms()
                msg = HopMessage(
                    seq=r.seq, stream_time=r.stream_time, wall_time=time.time(), valence=r.valence,
                    arousal=r.arousal, valence_raw=r.valence_raw, arousal_raw=r.arousal_raw, quadrant=r.quadrant,
                    model=model_id, latency_ms={k: round(v, 3) for k, v in latency.items()},
                    dropped_samples=source.dropped,
                )
                if self.osc is not None:
                    self.osc.send(msg)
                t_osc = time.perf_counter()
                self.server.publish_threadsafe(to_json(msg))
                t_send = time.perf_counter()
                self.hops.append({
                    "seq": r.seq, "t_audio": r.t_audio, "t_ready": r.t_ready, "t_features": r.t_features,
                    "t_inference": r.t_inference, "t_smoothing": r.t_smoothing, "t_osc": t_osc, "t_send": t_send,
                    "dropped": source.dropped,
                })


def summarize(hops: list[dict[str, float]], arrivals_osc: dict[int, float], arrivals_ws: dict[int, list[float]],
              hop_s: float, skip: int = 0) -> dict[str, Any]:
    """Per-stage percentiles (ms), late-hop counts and raw per-hop series for plots."""
    from bench.common import pct

    hops = hops[skip:]
    f = {k: np.array([h[k] for h in hops]) for k in hops[0]} if hops else {}
    seqs = [int(h["seq"]) for h in hops]
    osc_t = np.array([arrivals_osc.get(s, np.nan) for s in seqs])
    ws_t = np.array([arrivals_ws[s][0] if s in arrivals_ws else np.nan for s in seqs])
    ws_wall = np.array([arrivals_ws[s][1] - arrivals_ws[s][2] if s in arrivals_ws else np.nan for s in seqs])
    ms = {
        "capture": 1e3 * (f["t_ready"] - f["t_audio"]),
        "features": 1e3 * (f["t_features"] - f["t_ready"]),
        "inference": 1e3 * (f["t_inference"] - f["t_features"]),
        "smoothing": 1e3 * (f["t_smoothing"] - f["t_inference"]),
        "send_osc": 1e3 * (f["t_osc"] - f["t_smoothing"]),
        "send_ws_publish": 1e3 * (f["t_send"] - f["t_osc"]),
        "processing": 1e3 * (f["t_send"] - f["t_ready"]),
        "audio_to_send": 1e3 * (f["t_send"] - f["t_audio"]),
        "audio_to_osc_arrival": 1e3 * (osc_t - f["t_audio"]),
        "audio_to_ws_arrival": 1e3 * (ws_t - f["t_audio"]),
        "osc_transit": 1e3 * (osc_t - f["t_smoothing"]),
        "ws_transit": 1e3 * (ws_t - f["t_osc"]),
        "ws_transit_wallclock": 1e3 * ws_wall,
    }
    late = f["t_send"] > f["t_audio"] + hop_s
    late_arrival = np.nan_to_num(np.fmax(osc_t, ws_t), nan=np.inf) > f["t_audio"] + hop_s
    return {
        "hops": len(hops),
        "skipped_first_hops": skip,
        "osc_received": int(np.isfinite(osc_t).sum()),
        "ws_received": int(np.isfinite(ws_t).sum()),
        "late_hops": int(late.sum()),
        "late_hops_by_arrival": int(late_arrival.sum()),
        "dropped_samples": int(hops[-1]["dropped"]) if hops else 0,
        "ms": {k: pct(v[np.isfinite(v)]) for k, v in ms.items()},
        "series_ms": {k: [round(float(x), 3) for x in ms[k]] for k in ("processing", "audio_to_ws_arrival",
                                                                      "audio_to_osc_arrival", "inference")},
    }


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "receive":
    receiver_main([int(p) for p in sys.argv[3:]], Path(sys.argv[2]))
