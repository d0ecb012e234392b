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
from emotrack.realtime import discovery
from emotrack.realtime.access import ANY_ADDRESS, AccessPolicy, bound_names, is_loopback, token_policy
from emotrack.realtime.activity import MUSIC_OUTPUT, ActivityGate
from emotrack.realtime.history import RunHistory
from emotrack.realtime.markers import MarkerHub, read_terminal_markers
from emotrack.realtime.messages import SCHEMA_VERSION, HopMessage, hello_json
from emotrack.realtime.multistream import Input, StreamSet, parse_channels
from emotrack.realtime.osc import OscMarkerListener, OscSender
from emotrack.realtime.sinks import (
    CsvSink,
    ForStream,
    HistorySink,
    Hop,
    OscSink,
    SessionSink,
    Sink,
    ViewSink,
    WebSocketSink,
    dispatch,
)
from emotrack.realtime.smoothing import DEFAULT_SMOOTHING, make_smoother
from emotrack.realtime.streams import MultiTracker
from emotrack.realtime.tracker import Tracker
from emotrack.realtime.view import HopView
from emotrack.realtime.websocket import EmotionServer
from emotrack.stopsignals import OWN_HANDLED

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
    channels: int | str | None = None
    per_channel: bool = False
    url: list[str] = field(default_factory=list)
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
    smoothing: str = DEFAULT_SMOOTHING
    smoothing_params: dict[str, Any] = field(default_factory=dict)
    csv: Path | None = None
    session: Path | None = None
    append: bool = False
    client: str | None = None
    notes: str | None = None
    keep_audio: bool = False
    quiet: bool = False
    midi: str | None = None
    midi_virtual: str | None = None
    midi_channel: int = 1
    midi_cc: dict[str, int | None] = field(default_factory=dict)
    midi_14bit: bool = False
    midi_rate: float | None = None
    midi_refresh: float = 5.0
    mdns: bool | None = None


def _open_source(cfg: LiveConfig, stop: threading.Event, view: HopView, channels: int | None = None):
    from emotrack.realtime.sources import FileSource

    if cfg.file is not None:
        return FileSource(cfg.file, realtime=not cfg.fast, loop=cfg.loop, stop=stop)
    from emotrack.errors import DeviceError
    from emotrack.realtime.capture import CaptureSource

    try:
        return CaptureSource(
            device=cfg.device,
            samplerate=cfg.samplerate,
            channels=channels if channels is not None else cfg.channels,
            blocksize=cfg.blocksize,
            latency=cfg.latency,
            stop=stop,
        )
    except DeviceError as exc:
        if cfg.device is not None:
            raise
        # The header below says what to use instead; keep the reason (no device, no PortAudio and how to install it).
        hint = "use --file PATH to track a file"
        reason = str(exc).replace(f" ({hint})", "").replace(f", or {hint})", ")")
    from emotrack.assets import EXAMPLE_AUDIO

    # Say why (no device, or no PortAudio library at all) and that the example ends unless --loop.
    view.header(f"{reason}: tracking the bundled example recording instead (~65 s; --loop repeats it, "
                "--file PATH or --device picks the input)")
    return FileSource(EXAMPLE_AUDIO, realtime=not cfg.fast, loop=cfg.loop, stop=stop)


def _url_stream(spec: str, k: int) -> tuple[str, str]:
    """``NAME=URL`` or a bare URL (named ``url1``, ``url2``, ...)."""
    name, sep, url = spec.partition("=")
    if sep and "://" in url and "://" not in name and name.replace("-", "").replace("_", "").isalnum():
        return name, url
    return f"url{k + 1}", spec


def open_streams(cfg: LiveConfig, stop: threading.Event, view: HopView) -> StreamSet:
    """The inputs of a many-stream run: each channel of the device or file (``--per-channel``), then each ``--url``.

    The device or file takes part when ``--per-channel`` is given or no ``--url`` is: as per-channel streams
    ``ch1``, ``ch2``, ... (1-based, as interfaces label them), or as one stream ``input``.
    """
    from emotrack.realtime.netsource import UrlSource

    inputs: list[Input] = []
    if cfg.per_channel or not cfg.url or cfg.file is not None or cfg.device is not None:
        wanted = cfg.channels if isinstance(cfg.channels, str) else None
        selection = parse_channels(wanted) if wanted is not None else None
        opened = max(selection) + 1 if selection else (cfg.channels if isinstance(cfg.channels, int) else None)
        if cfg.per_channel and opened is None and cfg.file is None:
            opened = _device_channels(cfg.device)
        source = _open_source(cfg, stop, view, channels=opened)
        if cfg.per_channel:
            chosen = parse_channels(wanted, source.channels) if wanted else list(range(source.channels))
            inputs.append(Input(source, [f"ch{c + 1}" for c in chosen], chosen))
        else:
            inputs.append(Input(source, ["input"]))
    for k, spec in enumerate(cfg.url):
        name, url = _url_stream(spec, k)
        inputs.append(Input(UrlSource(url, stop), [name]))
    return StreamSet(inputs, stop)


def _device_channels(device: str | None) -> int | None:
    """All input channels of the device (``--per-channel`` without ``--channels``); None when unknown."""
    from emotrack.errors import DeviceError
    from emotrack.realtime.capture import list_input_devices, resolve_input_device

    try:
        index = resolve_input_device(device)
        return next(d["max_input_channels"] for d in list_input_devices() if d["index"] == index)
    except (DeviceError, StopIteration):
        return None


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
    osc_in, osc_in_explicit = _osc_in_address(cfg)
    mdns = discovery.wanted(cfg.mdns, [None if cfg.no_ws else cfg.ws_host, osc_in and osc_in[0]])
    allowed = [*cfg.ws_allow_host, *([discovery.server_name()] if mdns else [])]  # the name announced over mDNS
    policy = AccessPolicy(hosts=bound_names(cfg.ws_host, allowed), origins=frozenset(cfg.ws_allow_origin),
                          token=token, max_clients=cfg.ws_max_clients)
    osc = OscSender(targets, prefix=cfg.osc_prefix, scale=cfg.osc_range) if targets else None
    midi = _open_midi(cfg)  # before the model loads: the port is there for other programs to pick sooner
    runner = ModelRunner(cfg.model, provider=cfg.provider, threads=cfg.threads)
    stop = threading.Event()
    view = HopView() if not cfg.quiet else None
    run_id = uuid.uuid4().hex[:12]
    summary: dict[str, Any] = {"hops": 0, "dropped": 0, "model": runner.card.model_id, "provider": runner.provider,
                               "run_id": run_id}
    multi = cfg.per_channel or bool(cfg.url)
    stores: dict[str | None, Any] = {}  # one session per stream
    histories: dict[str | None, RunHistory] = {}

    def marked(marker: dict[str, Any]) -> None:
        for history in histories.values():
            history.add_marker(marker)
        if view is not None:
            view.marker(marker)

    def greeting(streams: frozenset[str] | None) -> list[str]:
        return [h.to_json() for name, h in histories.items() if streams is None or name is None or name in streams]

    hub = MarkerHub(on_marker=marked)
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
                               ssl_context=tls, greeting=greeting, on_marker=hub.mark)
        hub.broadcast = server.publish_threadsafe
        if view is not None:
            view.clients = lambda: server.clients
    sinks: list[Sink] = []
    if osc is not None:
        sinks.append(OscSink(osc))
    if midi is not None:
        sinks.append(midi)
    if server is not None:
        sinks.append(WebSocketSink(server))
    announcer: list[discovery.Announcer] = []
    failures: dict[str, int] = {}

    def publish(results, stream: str | None, dropped: int, outputs: list[Sink]) -> None:
        for r in results:
            msg = HopMessage(
                seq=r.seq, stream_time=r.stream_time, wall_time=time.time(), valence=r.valence,
                arousal=r.arousal, valence_raw=r.valence_raw, arousal_raw=r.arousal_raw, quadrant=r.quadrant,
                model=runner.card.model_id, latency_ms={k: round(v, 3) for k, v in r.latency_ms().items()},
                dropped_samples=dropped, confidence=r.confidence, active=r.active, stream=stream,
            )
            hub.stream_time = r.stream_time
            dispatch(outputs, Hop(r, msg, r.latency_ms(time.perf_counter())), failures)
            summary["hops"] += 1
            if stream is not None:
                summary["streams"][stream] = summary["streams"].get(stream, 0) + 1

    def outputs_for(names: list[str | None]) -> list[Sink]:
        outputs = list(sinks)
        for name in names:
            if cfg.csv:
                outputs.append(ForStream(CsvSink(HopCsvWriter(_stream_path(cfg.csv, name), keep_going=True)), name))
        if view is not None:
            outputs.append(ForStream(ViewSink(view), names[0]))  # the terminal shows the first stream
        return outputs

    def close_outputs(outputs: list[Sink]) -> None:
        for sink in outputs:
            if not sink.name.startswith(("osc", "view")):  # those are closed last, after the server
                sink.close()
        summary["errors"] = {s.name: s.errors for s in outputs if s.errors}
        summary["failed_outputs"] = dict(failures)  # hops an output raised on (a bug, logged once each)
        summary["csv_errors"] = sum(s.errors for s in outputs if s.name.startswith("csv"))

    def worker(source) -> None:
        tracker = Tracker(runner, source.sample_rate, smoother)
        outputs = outputs_for([None])
        store = stores.get(None)
        recorder = None
        if store is not None and cfg.keep_audio:
            from emotrack.session import AudioRecorder

            recorder = AudioRecorder(store.path.with_name(f"session-{store.session_id}-{run_id}.flac"),
                                     source.sample_rate, source.channels)
            summary["audio"] = str(recorder.path)
        started = time.perf_counter()
        try:
            for block, t_last in source:
                if recorder is not None:
                    recorder.write(block)
                publish(tracker.process(block, t_last), None, source.dropped, outputs)
                summary["dropped"] = source.dropped
                if stop.is_set() or (cfg.duration is not None and time.perf_counter() - started >= cfg.duration):
                    break
            else:
                if not stop.is_set():
                    publish(tracker.finish(), None, source.dropped, outputs)  # the source ended: the resampler's tail
        finally:
            close_outputs(outputs)
            summary["invalid_hops"] = tracker.invalid_hops
            if recorder is not None:
                recorder.close()
                summary["audio_errors"] = recorder.errors
            stop.set()

    def multi_worker(feed: StreamSet) -> None:
        """Every stream through one MultiTracker: hops completing together share one front-end and model call."""
        tracker = MultiTracker(runner, feed.rates, [make_smoother(cfg.smoothing, **cfg.smoothing_params)
                                                    for _ in feed.names])
        outputs = outputs_for(list(feed.names))
        started = time.perf_counter()
        summary["streams"] = {}
        reported: set[str] = set()
        try:
            for blocks, t_last in feed:
                for k, results in enumerate(tracker.process(blocks, t_last)):
                    publish(results, feed.names[k], feed.source_of(k).dropped, outputs)
                alive = set(feed.names) - feed.ended
                for name in sorted(feed.ended - reported) if alive else ():  # said once, while the others go on
                    reason = next((e for names, e in feed.errors.items() if name in names.split(", ")), "it ended")
                    print(f"emotrack: stream {name} stopped ({reason}); the others go on", file=sys.stderr)
                    reported.add(name)
                if stop.is_set() or (cfg.duration is not None and time.perf_counter() - started >= cfg.duration):
                    break
            else:
                if not stop.is_set():  # every input ended: flush each resampler's tail, as analyze does
                    for k, stream in enumerate(tracker.streams):
                        publish(stream.finish(), feed.names[k], feed.source_of(k).dropped, outputs)
        finally:
            close_outputs(outputs)
            summary["invalid_hops"] = sum(t.invalid_hops for t in tracker.streams)
            summary["dropped"] = sum(i.source.dropped for i in feed.inputs)
            summary["stream_errors"] = dict(feed.errors)
            summary["reconnects"] = {n: i.source.reconnects for i in feed.inputs for n in i.names
                                     if getattr(i.source, "reconnects", 0)}
            stop.set()

    async def main() -> None:
        # SIGTERM (service managers, `kill`) and SIGHUP (a closed terminal) end the stream like Ctrl-C: the worker
        # stops at its next block, files are closed and the summary is printed. One the process was started
        # ignoring (SIGHUP under nohup) stays ignored.
        loop = asyncio.get_running_loop()
        for sig in OWN_HANDLED:
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
        if multi:
            source = open_streams(cfg, stop, view or HopView(live=False))
            names: list[str | None] = list(source.names)
        else:
            source = _open_source(cfg, stop, view or HopView(live=False))
            names = [None]
        for name in names:
            histories[name] = RunHistory(run_id, runner.card.hop_s, stream=name)
            sinks.append(ForStream(HistorySink(histories[name]), name))
            if cfg.session is not None:
                device = source.description if name is None else f"stream {name} of {source.description}"
                stores[name] = open_session(cfg, runner, device)
                sinks.append(ForStream(SessionSink(stores[name]), name))
        if stores:
            hub.stores = list(stores.values())
            summary["session"] = ", ".join(str(st.session_id) for st in stores.values())
            if server is not None and not multi:
                server.hello = hello(stores[None].session_id)
        _announce(cfg, server, token, listener, next(iter(stores.values()), None), runner, source, smoother, targets,
                  view)
        if mdns:  # LAN discovery (--mdns): a failure is a warning line, never fatal
            services = discovery.run_services(
                ws=None if server is None else (cfg.ws_host, server.port), tls=tls is not None,
                token=token is not None, model=runner.card.model_id, schema=SCHEMA_VERSION,
                osc_in=None if listener is None else (osc_in[0], listener.port), osc_prefix=cfg.osc_prefix)
            announcer.extend(filter(None, [discovery.announce(services)]))
        if sys.stdin is not None and sys.stdin.isatty():
            read_terminal_markers(hub, stop)
        try:
            with source:
                await asyncio.to_thread(multi_worker if multi else worker, source)
        finally:
            stop.set()
            for a in announcer:  # goodbyes first: browsers drop the entries before the ports close
                await asyncio.to_thread(a.close)
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
        for store in stores.values():
            store.close("end")
        if stores:
            summary["stored"] = sum(st.hops_written for st in stores.values())
            summary["store_lost"] = sum(st.lost_hops for st in stores.values())
        summary["markers"] = len(hub.markers)
        if view is not None:
            view.close()
        if osc is not None:
            osc.close()
        if midi is not None:
            midi.close()  # idempotent: closed here when the worker never ran
        for a in announcer:
            a.close()
    return summary


def _open_midi(cfg: LiveConfig):
    """The MIDI output (:mod:`emotrack.realtime.midi`) when ``--midi`` or ``--midi-virtual`` is given, else None."""
    if cfg.midi is None and cfg.midi_virtual is None:
        return None
    from emotrack.realtime.midi import MidiSink

    sink = MidiSink(cfg.midi, virtual=cfg.midi_virtual, channel=cfg.midi_channel, ccs=cfg.midi_cc,
                    fourteen_bit=cfg.midi_14bit, rate=cfg.midi_rate, refresh_s=cfg.midi_refresh)
    print(f"emotrack: {sink.describe()}", file=sys.stderr)
    return sink


def open_session(cfg: LiveConfig, runner: ModelRunner, device: str):
    """A new session (or the latest, with ``append``) in ``cfg.session``, with the run's metadata."""
    from emotrack.session import SessionStore

    return SessionStore.create(
        cfg.session, model=runner.card.model_id, model_hash=_file_hash(runner.path), device=device,
        settings=_settings(cfg), hop_s=runner.card.hop_s, client=cfg.client, notes=cfg.notes, append=cfg.append,
    )


def _stream_path(path: Path, stream: str | None) -> Path:
    """``run.csv`` for one stream, ``run-ch1.csv`` etc. for several."""
    return path if stream is None else path.with_name(f"{path.stem}-{stream}{path.suffix}")


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
