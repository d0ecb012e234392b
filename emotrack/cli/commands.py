"""The commands the CLI runs itself (``run``, ``analyze``, ``devices``, ``data``): options in, library calls out.

Each takes the parsed :class:`argparse.Namespace`, checks what argparse cannot, calls the library and prints its
summary; the work is done in :mod:`emotrack.realtime`, :mod:`emotrack.analyze` and :mod:`emotrack.data`.
"""

from __future__ import annotations

import argparse
import json
import sys

from emotrack.errors import ConfigError


def run_command(args: argparse.Namespace) -> int:
    from emotrack.options import check_run
    from emotrack.realtime.live import LiveConfig, run_live
    from emotrack.realtime.midi import parse_cc_overrides

    if args.midi == "list":
        from emotrack.realtime.midi import output_port_names

        print("\n".join(f"{i}: {n}" for i, n in enumerate(output_port_names()))
              or "no MIDI output ports (--midi-virtual NAME opens one)")
        return 0
    params = dict(args.config_smoothing_params)
    params.update(dict(args.smoothing_param))
    cfg = LiveConfig(
        model=args.model, provider=args.provider, threads=args.threads, file=args.file, device=args.device,
        samplerate=args.samplerate, channels=args.channels, per_channel=args.per_channel, url=list(args.url),
        blocksize=args.blocksize, latency=args.latency,
        fast=args.fast, loop=args.loop, duration=args.duration, osc=args.osc or ["127.0.0.1:9000"],
        osc_prefix=args.osc_prefix, osc_range=args.osc_range, no_osc=args.no_osc, ws_host=args.ws_host,
        ws_port=args.ws_port, ws_queue=args.ws_queue, no_ws=args.no_ws, smoothing=args.smoothing,
        smoothing_params=params, csv=args.csv, quiet=args.quiet, osc_in=args.osc_in, no_osc_in=args.no_osc_in,
        ws_token=args.ws_token, ws_require_token=args.ws_require_token, ws_insecure=args.ws_insecure,
        ws_allow_origin=list(args.ws_allow_origin), ws_allow_host=list(args.ws_allow_host), ws_cert=args.ws_cert,
        ws_key=args.ws_key, ws_max_clients=args.ws_max_clients, session=args.session, append=args.append,
        client=args.client, notes=args.notes, keep_audio=args.keep_audio, midi=args.midi,
        midi_virtual=args.midi_virtual, midi_channel=args.midi_channel, midi_cc=parse_cc_overrides(args.midi_cc),
        midi_14bit=args.midi_14bit, midi_rate=args.midi_rate, midi_refresh=args.midi_refresh, mdns=args.mdns,
    )
    if cfg.file is not None and cfg.device is not None:
        raise ConfigError("give either --file or --device, not both")
    if isinstance(cfg.channels, str):
        from emotrack.realtime.multistream import parse_channels

        if not cfg.per_channel:
            raise ConfigError(f"--channels {cfg.channels}: a selection of channels needs --per-channel")
        parse_channels(cfg.channels)
    for flag in ("append", "client", "notes", "keep_audio"):
        if getattr(cfg, flag) and cfg.session is None:
            raise ConfigError(f"--{flag.replace('_', '-')} needs --session DIR")
    if (cfg.per_channel or cfg.url) and (cfg.keep_audio or cfg.append):
        raise ConfigError("--keep-audio and --append work on one stream, not with --per-channel or --url")
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.INFO, format="emotrack: %(message)s")
        logging.getLogger("websockets").setLevel(logging.WARNING)  # ours say the same with the reason
    check_run(vars(cfg))
    if cfg.latency not in ("low", "high"):
        try:
            cfg.latency = float(cfg.latency)  # type: ignore[assignment]
        except ValueError:
            raise ConfigError(f"--latency must be 'low', 'high' or seconds, got {cfg.latency!r}") from None
    summary = run_live(cfg)
    lost = f", {summary['csv_errors']} CSV writes failed" if summary.get("csv_errors") else ""
    if summary.get("invalid_hops"):
        lost += f", {summary['invalid_hops']} hops with a non-finite model output (held)"
    if summary.get("ws_refused"):
        lost += f", {summary['ws_refused']} WebSocket clients refused"
    if summary.get("errors", {}).get("midi"):
        lost += f", {summary['errors']['midi']} MIDI messages not sent"
    for name, count in summary.get("failed_outputs", {}).items():
        lost += f", output {name} failed on {count} hops"
    print(f"emotrack: {summary['hops']} hops, {summary['dropped']} samples dropped{lost}", file=sys.stderr)
    if "session" in summary:
        store_lost = f", {summary['store_lost']} lost (write errors)" if summary.get("store_lost") else ""
        print(f"emotrack: session {summary['session']}: {summary['stored']} hops and {summary['markers']} markers "
              f"stored{store_lost}", file=sys.stderr)
    return 0


def analyze_command(args: argparse.Namespace) -> int:
    from emotrack.analyze import AnalyzeSummary, analyze_files, default_jobs
    from emotrack.batch import analyze_catalogue, check_engine_options, collect_inputs, parquet_sources, write_parquet
    from emotrack.inference import ModelRunner
    from emotrack.options import check_output_dir, check_output_file, check_range
    from emotrack.realtime.smoothing import make_smoother

    check_range("threads", args.threads)
    check_output_dir(args.out)  # before the model loads: a bad --out fails at once
    check_output_file(args.parquet, "--parquet")
    check_engine_options(args.engine, args.address, args.gpus_per_worker, args.provider, args.jobs)
    items = collect_inputs(args.audio)
    smoother = make_smoother(args.smoothing, **dict(args.smoothing_param))
    runner = ModelRunner(args.model, provider=args.provider, threads=args.threads)
    if args.engine == "ray":
        summary = analyze_catalogue(items, args.out, runner, smoother, provider=args.provider, jobs=args.jobs,
                                    address=args.address, gpus_per_worker=args.gpus_per_worker, progress=not args.quiet)
        failed = summary.failed
    else:
        jobs = default_jobs() if args.jobs is None else args.jobs
        done = AnalyzeSummary()
        failed = analyze_files([item.path for item in items], args.out, runner, smoother, progress=not args.quiet,
                               jobs=jobs, summary=done)
    for _, message in failed:
        print(f"emotrack: error: {message}", file=sys.stderr)
    print((summary if args.engine == "ray" else done).line(args.out), file=sys.stderr)
    if args.parquet is not None:
        write_parquet(args.parquet, parquet_sources(items, args.out, failed, args.engine))
    return 2 if failed else 0


def devices_command(args: argparse.Namespace) -> int:
    from emotrack.realtime.capture import list_input_devices

    devices = list_input_devices()
    if args.json:
        print(json.dumps(devices, indent=2))
        return 0
    if not devices:
        print("no audio input devices found (use `emotrack run --file PATH` to track a file)")
        return 0
    print(f"{'':2}{'index':>5}  {'name':<40} {'host API':<12} {'channels':>8} {'rate':>8}")
    for d in devices:
        mark = "*" if d.get("default") else " "
        print(f"{mark:2}{d['index']:>5}  {d['name'][:40]:<40} {d['hostapi'][:12]:<12} "
              f"{d['max_input_channels']:>8} {d['default_samplerate']:>8.0f}")
    print("(* default input)")
    return 0


def data_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.data_command != "prepare":
        parser.parse_args(["data", "--help"])
    from emotrack.data.cache import prepare

    summary = prepare(args.data_root, args.render_cache or args.cache, args.datasets, args.limit,
                      soundfont=args.soundfont)
    print(json.dumps(summary, indent=2))
    return 0
