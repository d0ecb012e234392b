"""``emotrack run``: a source, the tracker and the outputs wired together.

Threads: the asyncio loop (main thread) serves WebSocket clients and the dashboard page; one worker thread pulls
audio from the source, runs each hop and hands it to every output (:mod:`emotrack.realtime.sinks`): OSC is sent
directly (a UDP send never blocks for long), WebSocket messages cross to the loop with ``call_soon_threadsafe``
into per-client bounded queues, so a slow client can never hold up the audio path. Markers arrive from the
terminal, the dashboard, WebSocket clients and OSC, each on its own thread, through one
:class:`~emotrack.realtime.markers.MarkerHub`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
import ssl
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emotrack.csvout import HopCsvWriter
from emotrack.errors import ConfigError
from emotrack.inference import ModelRunner
from emotrack.realtime.access import ANY_ADDRESS, AccessPolicy, bound_names, is_loopback, token_policy
from emotrack.realtime.activity import MUSIC_OUTPUT, ActivityGate
from emotrack.realtime.history import RunHistory
from emotrack.realtime.markers import MarkerHub, read_terminal_markers
from emotrack.realtime.messages import HopMessage, hello_json
from emotrack.realtime.osc import OscMarkerListener, OscSender
from emotrack.realtime.sinks import (
    CsvSink,
    HistorySink,
    Hop,
    OscSink,
    SessionSink,
    Sink,
    ViewSink,
    WebSocketSink,
    dispatch,
)
from emotrack.realtime.smoothing import make_smoother
from emotrack.realtime.tracker import Tracker
from emotrack.realtime.view import HopView
from emotrack.realtime.websocket import EmotionServer

__all__ = ["LiveConfig", "run_live"]

DEFAULT_OSC_IN = "127.0.0.1:9001"
"""Where OSC markers are received unless told otherwise; a busy default port only warns."""


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
    osc_in: str | None = None
    no_osc_in: bool = False
    ws_host: str = "127.0.0.1"
    ws_port: int = 8765
    ws_queue: int = 8
    no_ws: bool = False
    ws_token: str | None = None
    ws_require_token: bool = False
    ws_insecure: bool = False
    ws_allow_origin: list[str] = field(default_factory=list)
    ws_allow_host: list[str] = field(default_factory=list)
    ws_cert: Path | None = None
    ws_key: Path | None = None
    ws_max_clients: int = 64
    smoothing: str = "ema"
    smoothing_params: dict[str, Any] = field(default_factory=dict)
    csv: Path | None = None
    session: Path | None = None
    append: bool = False
    client: str | None = None
    notes: str | None = None
    keep_audio: bool = False
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
    except DeviceError as exc:
        if cfg.device is not None:
            raise
        reason = str(exc)
    from emotrack.assets import EXAMPLE_AUDIO

    # Say why (no device, or no PortAudio library at all) and that the example ends unless --loop.
    view.header(f"{reason}: tracking the bundled example recording instead (~65 s; --loop repeats it, "
                "--file PATH or --device picks the input)")
    return FileSource(EXAMPLE_AUDIO, realtime=not cfg.fast, loop=cfg.loop, stop=stop)


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """A server TLS context from a certificate chain and its key (PEM), or None without them."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("TLS needs both --ws-cert and --ws-key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise ConfigError(f"TLS file not found: {exc.filename}") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"cannot use --ws-cert {cert} / --ws-key {key}: {exc.strerror or exc}") from None
    return context


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _urls(cfg: LiveConfig, server: EmotionServer, token: str | None) -> list[str]:
    """Dashboard addresses to print: the bound one, or each LAN address for an any-address bind."""
    web = server.scheme[1]
    if cfg.ws_host in ANY_ADDRESS:
        hosts = sorted(h for h in bound_names(cfg.ws_host) if h[0].isdigit() or ":" in h)
        hosts = [h for h in hosts if not is_loopback(h)] or ["127.0.0.1"]
    else:
        hosts = [cfg.ws_host]
    query = f"?token={token}" if token else ""
    return [f"{web}://{f'[{h}]' if ':' in h else h}:{server.port}/{query}" for h in hosts]


def _osc_in_address(cfg: LiveConfig) -> tuple[tuple[str, int] | None, bool]:
    """Where to listen for OSC markers, and whether the user asked for it (then a busy port is an error)."""
    from emotrack.realtime.osc import parse_target

    if cfg.no_osc_in:
        return None, False
    explicit = cfg.osc_in is not None
    return parse_target(cfg.osc_in or DEFAULT_OSC_IN), explicit


def _settings(cfg: LiveConfig) -> dict[str, Any]:
    """The run's options as JSON values for the session's metadata (the token left out)."""
    values = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    values.pop("ws_token", None)
    return values


def run_live(cfg: LiveConfig) -> dict[str, Any]:
    """Run until the source ends, ``duration`` passes, Ctrl-C, SIGTERM or SIGHUP; returns a small summary."""
    from emotrack.realtime.osc import parse_target

    smoother = make_smoother(cfg.smoothing, **cfg.smoothing_params)
    targets = [] if cfg.no_osc else [parse_target(t) for t in cfg.osc]
    token = None if cfg.no_ws else token_policy(cfg.ws_host, cfg.ws_token, require=cfg.ws_require_token,
                                                 insecure=cfg.ws_insecure)
    tls = None if cfg.no_ws else tls_context(cfg.ws_cert, cfg.ws_key)
    policy = AccessPolicy(hosts=bound_names(cfg.ws_host, cfg.ws_allow_host), origins=frozenset(cfg.ws_allow_origin),
                          token=token, max_clients=cfg.ws_max_clients)
    osc_in, osc_in_explicit = _osc_in_address(cfg)
    osc = OscSender(targets, prefix=cfg.osc_prefix, scale=cfg.osc_range) if targets else None
    runner = ModelRunner(cfg.model, provider=cfg.provider, threads=cfg.threads)
    stop = threading.Event()
    view = HopView() if not cfg.quiet else None
    run_id = uuid.uuid4().hex[:12]
    summary: dict[str, Any] = {"hops": 0, "dropped": 0, "model": runner.card.model_id, "provider": runner.provider,
                               "run_id": run_id}
    store = None
    history = RunHistory(run_id, runner.card.hop_s)

    def marked(marker: dict[str, Any]) -> None:
        history.add_marker(marker)
        if view is not None:
            view.marker(marker)

    hub = MarkerHub(None, on_marker=marked)
    started = time.time()

    def hello(session: int | None = None) -> str:
        return hello_json(
            model=runner.card.model_id,
            hop_s=runner.card.hop_s,
            sample_rate=runner.card.sample_rate,
            smoothing=smoother.describe(),
            confidence=ActivityGate.describe(MUSIC_OUTPUT in runner.output_names),
            run_id=run_id,
            started=started,
            session=None if session is None else {"id": session},
        )

    server = None
    if not cfg.no_ws:
        server = EmotionServer(cfg.ws_host, cfg.ws_port, queue_size=cfg.ws_queue, hello=hello(), policy=policy,
                               ssl_context=tls, greeting=lambda streams: [history.to_json()], on_marker=hub.mark)
        hub.broadcast = server.publish_threadsafe
        if view is not None:
            view.clients = lambda: server.clients
    sinks: list[Sink] = [HistorySink(history)]
    if osc is not None:
        sinks.append(OscSink(osc))
    if server is not None:
        sinks.append(WebSocketSink(server))
    failures: dict[str, int] = {}

    def worker(source) -> None:
        tracker = Tracker(runner, source.sample_rate, smoother)
        outputs = list(sinks)
        if cfg.csv:
            outputs.append(CsvSink(HopCsvWriter(cfg.csv, keep_going=True)))
        if view is not None:
            outputs.append(ViewSink(view))
        recorder = None
        if store is not None and cfg.keep_audio:
            from emotrack.session import AudioRecorder

            recorder = AudioRecorder(store.path.with_name(f"session-{store.session_id}-{run_id}.flac"),
                                     source.sample_rate, source.channels)
            summary["audio"] = str(recorder.path)
        started = time.perf_counter()

        def publish(results) -> None:
            for r in results:
                msg = HopMessage(
                    seq=r.seq, stream_time=r.stream_time, wall_time=time.time(), valence=r.valence,
                    arousal=r.arousal, valence_raw=r.valence_raw, arousal_raw=r.arousal_raw, quadrant=r.quadrant,
                    model=runner.card.model_id, latency_ms={k: round(v, 3) for k, v in r.latency_ms().items()},
                    dropped_samples=source.dropped, confidence=r.confidence, active=r.active,
                )
                hub.stream_time = r.stream_time
                dispatch(outputs, Hop(r, msg, r.latency_ms(time.perf_counter())), failures)
                summary["hops"] += 1
                summary["dropped"] = source.dropped

        try:
            for block, t_last in source:
                if recorder is not None:
                    recorder.write(block)
                publish(tracker.process(block, t_last))
                if stop.is_set() or (cfg.duration is not None and time.perf_counter() - started >= cfg.duration):
                    break
            else:
                if not stop.is_set():
                    publish(tracker.finish())  # the source ended: flush the resampler's tail
        finally:
            for sink in outputs:
                if sink.name not in ("osc", "view"):  # those two are closed last, after the server
                    sink.close()
            summary["errors"] = {s.name: s.errors for s in outputs if s.errors} | failures
            summary["csv_errors"] = next((s.errors for s in outputs if s.name == "csv"), 0)
            summary["invalid_hops"] = tracker.invalid_hops
            if recorder is not None:
                recorder.close()
                summary["audio_errors"] = recorder.errors
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
        listener = None
        if osc_in is not None:
            try:
                listener = OscMarkerListener(*osc_in, cfg.osc_prefix, hub.mark)
            except ConfigError:
                if osc_in_explicit:
                    raise
                print(f"emotrack: warning: OSC markers not received: {osc_in[0]}:{osc_in[1]} is in use "
                      "(--osc-in picks another port)", file=sys.stderr)
        source = _open_source(cfg, stop, view or HopView(live=False))
        if cfg.session is not None:
            nonlocal store
            store = open_session(cfg, runner, source.description)
            hub.store = store
            sinks.append(SessionSink(store))
            summary["session"] = store.session_id
            if server is not None:
                server.hello = hello(store.session_id)
        _announce(cfg, server, token, listener, store, runner, source, smoother, targets, view)
        if sys.stdin is not None and sys.stdin.isatty():
            read_terminal_markers(hub, stop)
        try:
            with source:
                await asyncio.to_thread(worker, source)
        finally:
            stop.set()
            if listener is not None:
                listener.close()
            if server is not None:
                await server.stop()
                summary["ws_refused"] = server.refused

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        stop.set()
    finally:
        if store is not None:
            store.close("end")
            summary["stored"] = store.hops_written
            summary["store_lost"] = store.lost_hops
        summary["markers"] = len(hub.markers)
        if view is not None:
            view.close()
        if osc is not None:
            osc.close()
    return summary


def open_session(cfg: LiveConfig, runner: ModelRunner, device: str):
    """A new session (or the latest, with ``append``) in ``cfg.session``, with the run's metadata."""
    from emotrack.session import SessionStore

    return SessionStore.create(
        cfg.session, model=runner.card.model_id, model_hash=_file_hash(runner.path), device=device,
        settings=_settings(cfg), hop_s=runner.card.hop_s, client=cfg.client, notes=cfg.notes, append=cfg.append,
    )


def _announce(cfg, server, token, listener, store, runner, source, smoother, targets, view) -> None:
    """Say where everything is: the view's header line, and the dashboard address on stderr even when quiet."""
    where = []
    if server is not None:
        urls = _urls(cfg, server, token)
        where.append(f"dashboard {urls[0]}")
        for url in urls:
            print(f"emotrack: dashboard and stream at {url}", file=sys.stderr)
        if cfg.ws_insecure and not is_loopback(cfg.ws_host):
            print(f"emotrack: warning: --ws-insecure: anyone who reaches {cfg.ws_host}:{server.port} can read the "
                  "stream and add markers", file=sys.stderr)
    if targets:
        where.append("OSC " + ", ".join(f"{h}:{p}{cfg.osc_prefix}/*" for h, p in targets))
    if listener is not None:
        where.append(f"markers in on OSC {listener.address}")
    if store is not None:
        where.append(f"session {store.session_id} in {store.path}")
    if view is not None:
        view.header(
            f"emotrack: {runner.card.model_id} on {runner.provider.upper()} | {source.description} | "
            f"smoothing {smoother.describe()} | " + " | ".join(where or ["no outputs"])
        )
        if sys.stdin is not None and sys.stdin.isatty():
            view.header("type a label and press Enter to mark a moment (Enter alone: a plain mark)")
