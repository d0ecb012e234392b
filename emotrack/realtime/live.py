"""``emotrack run``: a source, the tracker and the outputs wired together.

Threads: the asyncio loop (main thread) serves WebSocket clients; one worker thread pulls audio from
the source, runs each hop and sends OSC directly (a UDP send never blocks for long). WebSocket
messages cross to the loop with ``call_soon_threadsafe`` into per-client bounded queues, so a slow
client can never hold up the audio path.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotrack.csvout import HopCsvWriter
from emotrack.inference import ModelRunner
from emotrack.realtime.activity import MUSIC_OUTPUT, ActivityGate
from emotrack.realtime.messages import HopMessage, hello_json, to_json
from emotrack.realtime.osc import OscSender
from emotrack.realtime.smoothing import make_smoother
from emotrack.realtime.tracker import Tracker
from emotrack.realtime.view import HopView
from emotrack.realtime.websocket import EmotionServer

__all__ = ["LiveConfig", "run_live"]


@dataclass
class LiveConfig:
    """Everything ``emotrack run`` can be told (flags and the TOML file map onto these names)."""

    model: str | None = None
    provider: str = "auto"
    threads: int = 1
    file: Path | None = None
    device: str | None = None
    samplerate: int | None = None
    channels: int | None = None
    blocksize: int = 0
    latency: str = "high"
    fast: bool = False
    loop: bool = False
    duration: float | None = None
    osc: list[str] = field(default_factory=lambda: ["127.0.0.1:9000"])
    osc_prefix: str = "/emotrack"
    osc_range: str = "0..1"
    no_osc: bool = False
    ws_host: str = "127.0.0.1"
    ws_port: int = 8765
    ws_queue: int = 8
    no_ws: bool = False
    smoothing: str = "ema"
    smoothing_params: dict[str, Any] = field(default_factory=dict)
    csv: Path | None = None
    quiet: bool = False


def _open_source(cfg: LiveConfig, stop: threading.Event, view: HopView):
    from emotrack.realtime.sources import FileSource

    if cfg.file is not None:
        return FileSource(cfg.file, realtime=not cfg.fast, loop=cfg.loop, stop=stop)
    from emotrack.errors import DeviceError
    from emotrack.realtime.capture import CaptureSource

    try:
        return CaptureSource(
            device=cfg.device,
            samplerate=cfg.samplerate,
            channels=cfg.channels,
            blocksize=cfg.blocksize,
            latency=cfg.latency,
            stop=stop,
        )
    except DeviceError:
        if cfg.device is not None:
            raise
    from emotrack.assets import EXAMPLE_AUDIO

    view.header("no audio input device found: tracking the bundled example recording (use --file or --device)")
    return FileSource(EXAMPLE_AUDIO, realtime=not cfg.fast, loop=cfg.loop, stop=stop)


def run_live(cfg: LiveConfig) -> dict[str, Any]:
    """Run until the source ends, ``duration`` passes or Ctrl-C; returns a small summary."""
    from emotrack.realtime.osc import parse_target

    smoother = make_smoother(cfg.smoothing, **cfg.smoothing_params)
    targets = [] if cfg.no_osc else [parse_target(t) for t in cfg.osc]
    osc = OscSender(targets, prefix=cfg.osc_prefix, scale=cfg.osc_range) if targets else None
    runner = ModelRunner(cfg.model, provider=cfg.provider, threads=cfg.threads)
    stop = threading.Event()
    view = HopView() if not cfg.quiet else None
    summary: dict[str, Any] = {"hops": 0, "dropped": 0, "model": runner.card.model_id, "provider": runner.provider}
    hello = hello_json(
        model=runner.card.model_id,
        hop_s=runner.card.hop_s,
        sample_rate=runner.card.sample_rate,
        smoothing=smoother.describe(),
        confidence=ActivityGate.describe(MUSIC_OUTPUT in runner.output_names),
    )
    server = None if cfg.no_ws else EmotionServer(cfg.ws_host, cfg.ws_port, queue_size=cfg.ws_queue, hello=hello)

    def worker(source) -> None:
        tracker = Tracker(runner, source.sample_rate, smoother)
        writer = HopCsvWriter(cfg.csv, keep_going=True) if cfg.csv else None
        started = time.perf_counter()

        def publish(results) -> None:
            for r in results:
                latency = r.latency_ms()
                msg = HopMessage(
                    seq=r.seq,
                    stream_time=r.stream_time,
                    wall_time=time.time(),
                    valence=r.valence,
                    arousal=r.arousal,
                    valence_raw=r.valence_raw,
                    arousal_raw=r.arousal_raw,
                    quadrant=r.quadrant,
                    model=runner.card.model_id,
                    latency_ms={k: round(v, 3) for k, v in latency.items()},
                    dropped_samples=source.dropped,
                    confidence=r.confidence,
                    active=r.active,
                )
                if osc is not None:
                    osc.send(msg)
                if server is not None:
                    server.publish_threadsafe(to_json(msg))
                sent = r.latency_ms(time.perf_counter())
                summary["hops"] += 1
                summary["dropped"] = source.dropped
                if writer is not None:
                    writer.write(r, latency_ms=sent["total"])
                if view is not None:
                    view.update(r, sent, source.dropped)

        try:
            for block, t_last in source:
                publish(tracker.process(block, t_last))
                if stop.is_set() or (cfg.duration is not None and time.perf_counter() - started >= cfg.duration):
                    break
            else:
                if not stop.is_set():
                    publish(tracker.finish())  # the source ended: flush the resampler's tail
        finally:
            if writer is not None:
                writer.close()
                summary["csv_errors"] = writer.errors
            summary["invalid_hops"] = tracker.invalid_hops
            stop.set()

    async def main() -> None:
        # SIGTERM (service managers, `kill`) and SIGHUP (a closed terminal) end the stream like Ctrl-C: the worker
        # stops at its next block, files are closed and the summary is printed.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows; not the main thread
                    loop.add_signal_handler(sig, stop.set)
        if server is not None:
            await server.start()
        source = _open_source(cfg, stop, view or HopView(live=False))
        if view is not None:
            where = []
            if server is not None:
                where.append(f"ws://{cfg.ws_host}:{server.port}")
            if osc is not None:
                where.append("OSC " + ", ".join(f"{h}:{p}{cfg.osc_prefix}/*" for h, p in targets))
            view.header(
                f"emotrack: {runner.card.model_id} on {runner.provider.upper()} | {source.description} | "
                f"smoothing {smoother.describe()} | " + " | ".join(where or ["no outputs"])
            )
        try:
            with source:
                await asyncio.to_thread(worker, source)
        finally:
            stop.set()
            if server is not None:
                await server.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        stop.set()
    finally:
        if view is not None:
            view.close()
        if osc is not None:
            osc.close()
    return summary

