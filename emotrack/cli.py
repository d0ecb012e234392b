"""Command-line interface: ``emotrack run | analyze | sessions | report | devices | models | export | train | evaluate |
data``.

The CLI only parses options and reports errors; the work is done by the library. Any
:class:`~emotrack.errors.EmotrackError` becomes one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import signal
import sys
import threading
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emotrack import __version__
from emotrack.errors import ConfigError, EmotrackError
from emotrack.realtime.smoothing import DEFAULT_SMOOTHING, parse_param
from emotrack.stopsignals import OWN_HANDLED, held

SMOOTHING_NAMES = ("ema", "one-euro", "triangle", "none")


def _channels(text: str) -> int | str:
    """``--channels 4`` (a count) or a selection ``1,2,5-8`` (checked when the input is known)."""
    return int(text) if text.strip().isdigit() else text


def _key_value(text: str) -> tuple[str, float]:
    try:
        return parse_param(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", "-m", help="bundled model name (see `emotrack models`) or path to an .onnx file "
                   "(default: the bundled default model)")
    g.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto",
                   help="ONNX Runtime provider: auto uses CUDA only when it really loads (default: auto)")
    g.add_argument("--threads", type=int, default=1,
                   help="ONNX Runtime intra-op threads for the model and its musicnn network, if any (default: 1)")


def _add_smoothing_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("smoothing (causal; raw values are always sent too)")
    g.add_argument("--smoothing", choices=SMOOTHING_NAMES, default=DEFAULT_SMOOTHING,
                   help="ema: one-pole with separate attack/release; one-euro: adaptive low-pass; "
                   "triangle: one-sided 13-tap triangle (MCA paper's 25-frame filter, causal half); "
                   f"none (default: {DEFAULT_SMOOTHING})")
    g.add_argument("--smoothing-param", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                   help="smoother parameter, repeatable: ema attack=1.0 release=2.0 (seconds); "
                   "one-euro min_cutoff=0.05 beta=2.0 d_cutoff=1.0 (Hz); triangle taps=13")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emotrack",
        description="Streaming music emotion tracker: valence and arousal every 0.5 s, out over OSC and WebSocket.",
    )
    parser.add_argument("--version", action="version", version=f"emotrack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="track live input (or a file) and serve OSC + WebSocket",
                         description="Track the default input device, a chosen device, or a file at real-time "
                         "pace. With no input device (or no PortAudio library) and no --file, it says why and tracks "
                         "the bundled example recording, which stops after ~65 s unless --loop.")
    run.add_argument("--config", type=Path, help="TOML file with defaults for these options ([run] table)")
    src = run.add_argument_group("input")
    src.add_argument("--file", "-f", type=Path, help="stream this audio file (wav/flac/ogg/mp3, any rate)")
    src.add_argument("--device", "-d", help="input device index or name substring (see `emotrack devices`)")
    src.add_argument("--samplerate", type=int, help="device sample rate (default: the device's own)")
    src.add_argument("--channels", type=_channels,
                     help="device channels to open, mixed to mono (default: the first two, or the one of a mono "
                     "device; PortAudio would otherwise open all 32 of ALSA's 'pulse'); with --per-channel a "
                     "selection such as 1,2,5-8 (1-based), each tracked as its own stream")
    src.add_argument("--per-channel", action="store_true",
                     help="track every input channel (or the --channels selection) as its own stream ch1, ch2, ...: "
                     "OSC /emotrack/ch1/valence ..., a 'stream' field in WebSocket messages")
    src.add_argument("--url", action="append", default=[], metavar="[NAME=]URL",
                     help="also track network audio (http/Icecast/HLS, via PyAV), repeatable; reconnects when it drops")
    src.add_argument("--blocksize", type=int, default=0,
                     help="frames per audio callback; 0 lets PortAudio choose, the most robust (default: 0)")
    src.add_argument("--latency", default="high",
                     help="PortAudio input latency: 'low', 'high' or seconds (default: high)")
    src.add_argument("--fast", action="store_true", help="with --file: run as fast as possible, not paced")
    src.add_argument("--loop", action="store_true",
                     help="with --file or the bundled example: start over at the end (else the run stops there)")
    src.add_argument("--duration", type=float, help="stop after this many seconds")
    _add_model_options(run)
    _add_smoothing_options(run)
    out = run.add_argument_group("outputs")
    out.add_argument("--osc", action="append", metavar="HOST:PORT",
                     help="OSC target, repeatable (default: 127.0.0.1:9000)")
    out.add_argument("--osc-prefix", default="/emotrack", help="OSC address prefix (default: /emotrack)")
    out.add_argument("--osc-range", choices=("0..1", "-1..1"), default="0..1",
                     help="range of OSC valence/arousal values (default: 0..1)")
    out.add_argument("--no-osc", action="store_true", help="send no OSC")
    out.add_argument("--osc-in", metavar="HOST:PORT",
                     help="receive OSC markers (<prefix>/marker s) here (default: 127.0.0.1:9001, skipped if busy)")
    out.add_argument("--no-osc-in", action="store_true", help="receive no OSC markers")
    out.add_argument("--midi", metavar="PORT",
                     help="send MIDI CCs to this output port: index or name substring; `--midi list` lists them "
                     "(needs the midi extra)")
    out.add_argument("--midi-virtual", metavar="NAME",
                     help="open a virtual MIDI output port NAME for Ableton, Resolume, ... to select (macOS, Linux)")
    out.add_argument("--midi-channel", type=int, default=1, metavar="1-16", help="MIDI channel (default: 1)")
    out.add_argument("--midi-cc", action="append", default=[], metavar="NAME=CC",
                     help="CC number of a value, repeatable; NAME=off leaves it out (defaults: valence=20 arousal=21 "
                     "valence_raw=22 arousal_raw=23 quadrant=24 confidence=25 active=26)")
    out.add_argument("--midi-14bit", action="store_true",
                     help="continuous values as 14-bit CC pairs: MSB on CC n, LSB on CC n+32 (n below 32)")
    out.add_argument("--midi-rate", type=float, metavar="HZ",
                     help="ramp continuous values between hops, sent at HZ (adds up to one hop of delay; "
                     "default: once per hop)")
    out.add_argument("--midi-refresh", type=float, default=5.0, metavar="SECONDS",
                     help="CCs go out when they change, and all of them every SECONDS of audio; 0: all every hop "
                     "(default: 5)")
    out.add_argument("--csv", type=Path, help="also log every hop to this CSV file (analyze's columns + latency)")
    out.add_argument("--quiet", "-q", action="store_true", help="no terminal view")
    out.add_argument("--verbose", "-v", action="store_true",
                     help="log connections, refused clients and other events (info level) on stderr")
    web = run.add_argument_group("WebSocket stream and dashboard (one port: http(s)://HOST:PORT/ and ws(s)://HOST:PORT/)")
    web.add_argument("--ws-host", default="127.0.0.1",
                     help="bind address; 0.0.0.0 serves the LAN and then requires a token (default: 127.0.0.1)")
    web.add_argument("--ws-port", type=int, default=8765, help="port of the stream and the dashboard (default: 8765)")
    web.add_argument("--ws-queue", type=int, default=8,
                     help="messages buffered per WebSocket client before the oldest is dropped (default: 8)")
    web.add_argument("--no-ws", action="store_true", help="serve no WebSocket and no dashboard")
    web.add_argument("--ws-token", help="token clients must give (?token= or Authorization: Bearer); default: "
                     "generated and printed when binding a non-loopback address")
    web.add_argument("--ws-require-token", action="store_true", help="require a token on loopback too")
    web.add_argument("--ws-insecure", action="store_true",
                     help="no token even on the LAN: anyone who reaches the port can read the stream")
    web.add_argument("--ws-allow-origin", action="append", default=[], metavar="ORIGIN",
                     help="web origin allowed besides the dashboard's own, repeatable (e.g. http://studio.local:8080; "
                     "null for a page opened from a file)")
    web.add_argument("--ws-allow-host", action="append", default=[], metavar="NAME",
                     help="extra Host name clients may use (a venue DNS name), repeatable")
    web.add_argument("--ws-cert", type=Path, help="TLS certificate chain (PEM): serve wss:// and https://")
    web.add_argument("--ws-key", type=Path, help="TLS private key (PEM) for --ws-cert")
    web.add_argument("--ws-max-clients", type=int, default=64, help="most clients at once (default: 64)")
    web.add_argument("--mdns", action=argparse.BooleanOptionalAction, default=None,
                     help="announce the stream (_emotrack._tcp) and the OSC marker port (_osc._udp) over mDNS/DNS-SD "
                     "(default: on when --ws-host or --osc-in is not loopback)")
    ses = run.add_argument_group("session recording (see `emotrack sessions` and `emotrack report`)")
    ses.add_argument("--session", type=Path, metavar="DIR",
                     help="record every hop, markers and metadata into DIR/sessions.sqlite (a new session each run)")
    ses.add_argument("--append", action="store_true", help="with --session: continue the latest session in DIR")
    ses.add_argument("--client", metavar="PSEUDONYM", help="with --session: client pseudonym (no real names)")
    ses.add_argument("--notes", help="with --session: free-text notes")
    ses.add_argument("--keep-audio", action="store_true",
                     help="with --session: also keep the audio as FLAC (sensitive data; off by default)")

    ana = sub.add_parser("analyze", help="write a per-hop CSV for each audio file",
                         description="Writes DIR/<stem>.csv per input: time_s,valence,arousal (raw model values "
                         "in [-1,1], one row per 0.5 s hop, time_s = hop end) then smoothed values and quadrant. "
                         "Same numbers as `run --file` (to 1e-5: hops are computed 64 at a time).")
    ana.add_argument("audio", nargs="+", type=Path, help="audio files (wav/flac/ogg/mp3, any rate and channels), "
                     "folders (searched recursively), globs ('lib/**/*.mp3') or manifests (.txt/.m3u: one path a line)")
    ana.add_argument("--out", "-o", type=Path, required=True, help="output directory")
    ana.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    ana.add_argument("--jobs", "-j", type=int, default=None,
                     help="processes (--engine ray: Ray workers) to spread the files over, one model each "
                     "(default: one per core; with --address: the cluster's CPUs)")
    cat = ana.add_argument_group("catalogue engine (Ray: model loaded once per worker, failures listed, reruns resume)")
    cat.add_argument("--engine", choices=("local", "ray"), default="local",
                     help="local: processes on this machine; ray: Ray actors (needs `pip install 'emotrack[ray]'`), "
                     "with OUT/failed.json and OUT/done.jsonl so a rerun skips finished files (default: local)")
    cat.add_argument("--address", metavar="ADDR", help="with --engine ray: a running Ray cluster (HOST:PORT, auto or "
                     "ray://HOST:PORT; inputs and models at the same paths on every node); default: embedded local "
                     "Ray with --jobs CPUs")
    cat.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="X",
                     help="with --engine ray: GPUs per worker (fractions share a GPU; default: 0)")
    cat.add_argument("--parquet", type=Path, metavar="FILE",
                     help="also write every finished file's curve into one Parquet data set (an input column + "
                     "the CSV columns)")
    _add_model_options(ana)
    _add_smoothing_options(ana)

    parser.run_parser = run
    dev = sub.add_parser("devices", help="list audio input devices")
    dev.add_argument("--json", action="store_true", help="machine-readable output")

    mod = sub.add_parser("models", help="list bundled models and their metadata")
    mod.add_argument("--json", action="store_true", help="machine-readable output")

    exp = sub.add_parser("export", help="export a training checkpoint to ONNX (checks parity first)")
    exp.add_argument("checkpoint", type=Path, help="training checkpoint (.pt)")
    exp.add_argument("-o", "--out", type=Path,
                     help="output .onnx path (default: the checkpoint's name with .onnx, or _fp16.onnx with --fp16)")
    exp.add_argument("--fp16", action="store_true",
                     help="float16 graph for GPU, float32 inputs/outputs (parity tolerance 2e-2 instead of 1e-4)")
    exp.add_argument("--tolerance", type=float, help="max |torch - onnxruntime| allowed (default 1e-4, fp16 2e-2)")
    exp.add_argument("--audio", type=Path, help="real audio for the parity check (default: the bundled example)")

    tr = sub.add_parser("train", help="train a zoo model, with grouped cross-validation (needs the train extra)",
                        description="Multi-task when several --datasets are given: sign targets from 4Q/EMOPIA "
                        "quadrants, continuous V/A targets from VGMIDI. Grouped k-fold CV (--folds: 4Q by artist, "
                        "VGMIDI by piece; EMOPIA by its official song split, its val songs never trained on), then "
                        "a final model on all clips but EMOPIA val (--final), exported with the CV metrics in its "
                        "metadata (--export). Early stopping on a grouped inner holdout; seeded; resumable.")
    tr.add_argument("model", help="zoo model name: mca, damff, adff, dsaml, sincnet")
    _add_data_options(tr)
    tr.add_argument("--out", "-o", type=Path, default=Path("runs"),
                    help="run directory: per-fold and final checkpoints (final_best.pt), splits.json, CV "
                    "JSON/markdown (default: runs)")
    tr.add_argument("--epochs", type=int, default=80, help="training epochs per model (default: 80)")
    tr.add_argument("--folds", type=int, default=5,
                    help="k for grouped cross-validation; 0 = none; with only emopia any k > 1 means its official "
                    "train -> val split (default: 5)")
    tr.add_argument("--final", action=argparse.BooleanOptionalAction, default=True,
                    help="also train the final model on all clips except EMOPIA val (default: yes)")
    tr.add_argument("--export", type=Path, help="export the final model to this .onnx path")
    tr.add_argument("--frontend", help="front end, for models that can read several: mca reads logmel (default), "
                    "logmel_tonal (log-mel + chroma and key clarity), musicnn (pretrained embeddings), musicnn_tonal "
                    "(two musicnn windows + chroma and key clarity: the default's) or smile260 "
                    "(openSMILE extra)")
    tr.add_argument("--hparams", help="JSON overriding training settings (TrainConfig fields), e.g. '{\"lr\": 1e-3}'")
    tr.add_argument("--resume", action="store_true", help="continue interrupted runs from their checkpoints")
    tr.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="where to train: auto = the GPU when PyTorch sees one (default: auto)")
    tr.add_argument("--workers", type=int, default=2,
                    help="processes for rendering and feature extraction (default: 2)")
    tr.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    tr.add_argument("--cv-results", type=Path, help="CV JSON whose numbers go into the card when --folds 0")
    tr.add_argument("--ensemble", type=Path, nargs="+", metavar="RUN",
                    help="train nothing: combine the fold and final checkpoints of these runs (the same command with "
                    "other hparams seeds) into mean-of-outputs ensembles, then score and export them like a run; with "
                    "--folds 0 a RUN may be a final checkpoint file (.pt)")
    tr.add_argument("--quiet", "-q", action="store_true", help="no progress bars")

    ev = sub.add_parser("evaluate", help="evaluate a model on data sets with the papers' metrics",
                        description="Streams every clip through the model causally and reports, per data set, "
                        "RMSE/PCC/CCC for valence and arousal (per song and global) for VGMIDI, or clip-quadrant "
                        "weighted P/R/F1/accuracy, sign accuracies and the confusion matrix for 4Q/EMOPIA.")
    ev.add_argument("model", help="checkpoint (.pt), .onnx file or bundled model name")
    _add_data_options(ev)
    ev.add_argument("--emopia-split", choices=("val", "train", "all"), default="val",
                    help="EMOPIA songs to evaluate on: its official val split, train split or both (default: val)")
    ev.add_argument("--out", "-o", type=Path, help="write the metrics JSON here")
    ev.add_argument("--workers", type=int, default=2,
                    help="processes for rendering and feature extraction (default: 2)")
    ev.add_argument("--quiet", "-q", action="store_true", help="no progress bars")

    data = sub.add_parser("data", help="data preparation")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    prep = data_sub.add_parser("prepare", help="render MIDI data sets and index all clips once (cached)")
    _add_data_options(prep)
    prep.set_defaults(datasets=["4q", "vgmidi", "emopia"])

    per = sub.add_parser("personalize", help="adapt a model to one listener's annotation of one song (no torch)",
                         description="Fit the model's valence/arousal output layer to your own curve of one song "
                         "(CSV time_s,valence,arousal, e.g. from `emotrack annotate`) and write a personal ONNX "
                         "model; use it with --model like any other. The song's hash is recorded, never the audio.")
    per.add_argument("--audio", type=Path, required=True, metavar="SONG", help="the annotated song (audio file)")
    per.add_argument("--labels", type=Path, required=True, metavar="CURVE.csv",
                     help="your curve: time_s,valence,arousal rows, values in [-1, 1], at least 20 s")
    per.add_argument("--model", help="base model name or .onnx path (default: mca-musicnn)")
    per.add_argument("--out", "-o", type=Path, metavar="FILE.onnx",
                     help="personal model to write (default: the user models folder, $EMOTRACK_MODELS or "
                     "~/.local/share/emotrack/models, where `emotrack models` finds it)")
    per.add_argument("--steps", type=int, help="gradient steps (default: 32)")
    per.add_argument("--lr", type=float, help="step size (default: 0.05)")
    per.add_argument("--json", action="store_true", help="print what was done as JSON")
    ann = sub.add_parser("annotate", help="annotate a song in the browser: play it, move a point on the V-A plane",
                         description="Serve a page (loopback only) that plays SONG while you move a point on the "
                         "valence-arousal plane (mouse, touch or arrow keys); it samples the point at 2 Hz and "
                         "the server writes CURVE.csv for `emotrack personalize`.")
    ann.add_argument("audio", type=Path, metavar="SONG", help="audio file the browser can play (wav, ogg, mp3, flac)")
    ann.add_argument("--out", "-o", type=Path, required=True, metavar="CURVE.csv", help="where to write the curve")
    ann.add_argument("--port", type=int, default=8766, help="HTTP port on 127.0.0.1 (default: 8766; 0: any free)")
    ann.add_argument("--once", action="store_true", help="exit after the first curve is saved")
    ann.add_argument("--no-browser", action="store_true", help="do not open a browser, just print the address")
    meta = sub.add_parser("meta-train", help="meta-train a model's head on VGMIDI annotators (first-order MAML; "
                          "needs the train extra)", description="First-order MAML over per-worker VGMIDI tasks, "
                          "with `emotrack personalize`'s adaptation as the inner loop; writes a checkpoint "
                          "(`emotrack export` it to use it as a personalisation starting point).")
    meta.add_argument("checkpoint", type=Path, help="MCA training checkpoint (.pt) to start from")
    meta.add_argument("--out", "-o", type=Path, required=True, help="checkpoint to write")
    meta.add_argument("--splits", type=Path, help="splits.json of a CV run: meta-train on --fold's training part only")
    meta.add_argument("--fold", type=int, default=0, help="fold of --splits (default: 0)")
    meta.add_argument("--episodes", type=int, default=150, help="meta-updates of 16 tasks each (default: 150)")
    meta.add_argument("--outer-lr", type=float, default=1e-4, help="Adam step of the outer loop (default: 1e-4)")
    meta.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    meta.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    _add_data_options(meta)

    lst = sub.add_parser("sessions", help="list the sessions recorded in a session folder",
                         description="List the sessions in DIR (recorded by `emotrack run --session DIR`): id, "
                         "start, duration, hops, markers, model, client, and whether it ended, is recording or "
                         "was interrupted.")
    lst.add_argument("dir", type=Path, metavar="DIR", help="session folder (or its sessions.sqlite)")
    lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rep = sub.add_parser("report", help="write an HTML or PDF report of a recorded session (+ its data as CSV)",
                         description="Write a report of one session: metadata, valence/arousal timeline with "
                         "markers, the trajectory on the valence-arousal plane, time per quadrant and per marked "
                         "segment, periods with no music; the hops go to FILE.csv beside it. Works while the "
                         "session is still recording.")
    rep.add_argument("store", type=Path, metavar="SESSION", help="session folder or its sessions.sqlite")
    rep.add_argument("--session", dest="session_id", type=int, metavar="ID",
                     help="session id (see `emotrack sessions`; default: the latest)")
    rep.add_argument("--out", "-o", type=Path, required=True, metavar="FILE",
                     help="report file: FILE.html (self-contained) or FILE.pdf")
    _describe(sub)
    return parser


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples (text with its own line breaks) as written, and wraps one-paragraph descriptions."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


COMMAND_HELP: dict[str, tuple[str | None, str]] = {
    "run": (None, """\
examples:
  emotrack run                                   # default input (or the bundled example), OSC to 127.0.0.1:9000
  emotrack run --file set.wav --loop --osc 192.168.1.20:9000
  emotrack run --device "USB Audio" --ws-host 0.0.0.0 --csv show.csv"""),
    "analyze": (None, """\
examples:
  emotrack analyze song.mp3 --out curves/
  emotrack analyze music/ --out curves/ --jobs 4   # a folder, searched recursively
  emotrack analyze a.wav b.flac --out curves/ --model mca -q"""),
    "devices": ("List the audio input devices PortAudio sees: index, name, host API, input channels and default "
                "sample rate; * marks the default input. Give an index or part of a name to `run --device`.", """\
examples:
  emotrack devices
  emotrack run --device 3
  emotrack devices --json"""),
    "models": ("List the models emotrack can run: name and version (* the default), what it reads (its front end), "
               "CPU cost per hop where its card records it, 4Q weighted F1 of its recipe's grouped cross-validation "
               "and the data sets it was trained on; personal models (`emotrack personalize`) after the bundled ones.",
               """\
examples:
  emotrack models
  emotrack models --json                         # every card's fields
  emotrack run --model mca                       # run another one"""),
    "export": ("Export a training checkpoint (.pt) to an ONNX model with emotrack's metadata; it refuses to write "
               "unless ONNX Runtime matches PyTorch on real audio. Needs the train extra.", """\
examples:
  emotrack export runs/mca/final_best.pt -o my_model.onnx
  emotrack export runs/mca/final_best.pt --fp16   # float16 graph for GPUs
  emotrack run --model my_model.onnx"""),
    "train": (None, """\
examples:
  emotrack train mca --data-root DATA --datasets 4q --frontend logmel_tonal --out runs/mca
  emotrack train mca --data-root DATA --datasets 4q --hparams '{"seed": 1}' --out runs/mca-s1   # another seed
  emotrack train mca --data-root DATA --datasets 4q --ensemble runs/mca runs/mca-s1 -o runs/ens --export ens.onnx"""),
    "evaluate": (None, """\
examples:
  emotrack evaluate mca --data-root DATA --datasets 4q
  emotrack evaluate runs/multi/final_best.pt --data-root DATA --datasets vgmidi emopia -o metrics.json"""),
    "data": ("Data preparation for training: `data prepare` renders the MIDI data sets (VGMIDI, EMOPIA) to audio "
             "once and indexes every clip, so that train and evaluate start at once.", """\
examples:
  emotrack data prepare --data-root DATA --cache .cache/features"""),
    "data prepare": ("Render the MIDI data sets (VGMIDI, EMOPIA) to audio with a General MIDI soundfont, once, and "
                     "index every clip of the data sets in --datasets; later runs reuse both.", """\
examples:
  emotrack data prepare --data-root DATA --cache .cache/features
  emotrack data prepare --data-root DATA --datasets vgmidi --soundfont FluidR3_GM.sf2"""),
    "personalize": (None, """\
examples:
  emotrack annotate song.ogg --out my_curve.csv
  emotrack personalize --audio song.ogg --labels my_curve.csv
  emotrack run --model mca-musicnn-personal-1a2b3c4d   # the name it printed"""),
    "annotate": (None, """\
examples:
  emotrack annotate song.ogg --out my_curve.csv
  emotrack annotate song.ogg --out my_curve.csv --once --no-browser"""),
    "meta-train": (None, """\
examples:
  emotrack meta-train runs/mca-musicnn/final_best.pt --data-root DATA -o runs/meta/meta.pt
  emotrack meta-train runs/cv/final_best.pt --splits runs/cv/splits.json --fold 2 -o runs/meta/fold2.pt
  emotrack export runs/meta/meta.pt -o meta.onnx"""),
    "sessions": (None, """\
examples:
  emotrack run --session ~/emotrack-sessions --client P07
  emotrack sessions ~/emotrack-sessions
  emotrack sessions ~/emotrack-sessions --json"""),
    "report": (None, """\
examples:
  emotrack report ~/emotrack-sessions -o latest.html
  emotrack report ~/emotrack-sessions --session 3 -o session3.pdf"""),
}
"""Per command: a description where the parser has none (None: keep its own) and the examples shown after the
options by ``--help``."""


def _describe(sub: argparse._SubParsersAction, prefix: str = "") -> None:
    """Give every subcommand (``data prepare`` too) its description and examples, and a formatter that keeps the
    examples' lines."""
    for name, command in sub.choices.items():
        description, examples = COMMAND_HELP.get(prefix + name, (None, None))
        if description is not None:
            command.description = description
        command.epilog = examples
        command.formatter_class = _HelpFormatter
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _describe(action, f"{prefix}{name} ")


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """Data options shared by train, evaluate and data prepare (one place for their defaults)."""
    p.add_argument("--data-root", "--data", type=Path, default=Path("../shared/data"),
                   help="folder holding 4q/, vgmidi/, emopia/, deam_annotations/ (default: ../shared/data)")
    p.add_argument("--datasets", nargs="+", default=["4q"],
                   help="data sets to use, any of 4q vgmidi emopia (data prepare: also deam pmemo) (default: 4q)")
    p.add_argument("--cache", type=Path, default=Path(".cache/features"),
                   help="cache for front-end features (default: .cache/features)")
    p.add_argument("--render-cache", type=Path,
                   help="where MIDI data sets (vgmidi, emopia) are rendered to audio, once; data prepare also "
                   "writes its clip index there (default: the --cache folder)")
    p.add_argument("--soundfont", type=Path,
                   help="General MIDI .sf2 for rendering (default: $EMOTRACK_SOUNDFONT, else TimGM6mb, FluidR3)")
    p.add_argument("--limit", type=int,
                   help="use at most this many clips per data set, balanced over quadrants/arousal/splits (quick runs)")
    p.add_argument("--seed", type=int, default=0, help="seed for splits, --limit and training (default: 0)")


RUN_DESTS = {
    "file", "device", "samplerate", "channels", "blocksize", "latency", "fast", "loop", "duration", "model",
    "provider", "threads", "smoothing", "smoothing_params", "osc", "osc_prefix", "osc_range", "no_osc", "ws_host",
    "ws_port", "ws_queue", "no_ws", "csv", "quiet", "osc_in", "no_osc_in", "verbose", "ws_token", "ws_require_token",
    "ws_insecure", "ws_allow_origin", "ws_allow_host", "ws_cert", "ws_key", "ws_max_clients", "session", "append",
    "client", "notes", "keep_audio", "per_channel", "url", "midi", "midi_virtual", "midi_channel", "midi_cc",
    "midi_14bit", "midi_rate", "midi_refresh", "mdns",
}


def load_config(path: Path) -> dict[str, Any]:
    """Read the ``[run]`` table of a TOML file (keys as the long option names, - or _)."""
    from emotrack.options import check_config_types

    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"--config {path} is a folder; give a .toml file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    table = doc.get("run", doc)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [run] must be a table of options, got {type(table).__name__} {table!r}")
    values = {k.replace("-", "_"): v for k, v in table.items()}
    unknown = sorted(set(values) - RUN_DESTS)
    if unknown:
        names = ", ".join(k if k.isprintable() else repr(k) for k in unknown)  # a key may hold a newline: one line
        raise ConfigError(f"{path}: unknown option(s) {names}")
    check_config_types(values, str(path))
    if isinstance(values.get("osc"), str):
        values["osc"] = [values["osc"]]
    if isinstance(values.get("midi"), int):  # a port index
        values["midi"] = str(values["midi"])
    for key in ("ws_allow_origin", "ws_allow_host", "url", "midi_cc"):
        if isinstance(values.get(key), str):
            values[key] = [values[key]]
    for key in ("file", "csv", "session", "ws_cert", "ws_key"):  # argparse converts its own strings only
        if isinstance(values.get(key), str):
            values[key] = Path(values[key])
    return values


def _cmd_run(args: argparse.Namespace) -> int:
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


def _cmd_analyze(args: argparse.Namespace) -> int:
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


def _cmd_devices(args: argparse.Namespace) -> int:
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


FRONTEND_WORDS = {"musicnn": "musicnn embeddings", "musicnn_tonal": "musicnn + chroma, key", "logmel": "log-mel",
                  "logmel_tonal": "log-mel + chroma, key",
                  "wave": "raw waveform", "smile260": "openSMILE 260"}
"""What each front end reads, in the words ``emotrack models`` shows."""

DATASET_NAMES = ("4Q", "VGMIDI", "EMOPIA", "DEAM", "PMEmo")


def _without_paths(text: str) -> str:
    """A card's text without file-system paths (``../shared/data/4q``: where it was trained, not for users)."""
    import re

    return re.sub(r",?\s*(?<![\w/.~])(?:\.{1,2}/|~/|/)[^\s,;)]*", "", text).strip()


def _trained_on(training: dict[str, Any]) -> str:
    """The data-set names a card's training text mentions, e.g. ``4Q, VGMIDI, EMOPIA``."""
    import re

    text = str(training.get("data", ""))
    names = [n for n in DATASET_NAMES if re.search(rf"\b{n}\b", text, re.IGNORECASE)]
    found = ", ".join(names) or _without_paths(text)[:40] or "n/a"
    return found + (" + one listener" if training.get("personalised") else "")


def _model_entry(name: str, default: str) -> dict[str, Any]:
    """One model's card fields for ``emotrack models``: the card summary, paths removed, plus what the table shows."""
    from emotrack.inference import ModelRunner, bundled_models

    runner = ModelRunner(name, provider="cpu")
    card = runner.card.summary()
    card["training"] = _without_paths(str(card["training"]))
    card["datasets"] = _trained_on(runner.card.training)
    card["default"] = name == default
    card["file"] = runner.path.name
    card["location"] = "bundled" if name in bundled_models() else "user"
    return card


def _cmd_models(args: argparse.Namespace) -> int:
    """A compact table (``--json``: every card's fields); CPU cost only where a card records ``cpu_ms_per_hop``."""
    from emotrack.errors import ModelError
    from emotrack.inference import DEFAULT_MODEL, available_models

    cards = []
    for name in sorted(available_models(), key=lambda n: n != DEFAULT_MODEL):  # the default first, personal last
        try:
            cards.append(_model_entry(name, DEFAULT_MODEL))
        except ModelError as exc:  # one broken file in the user models folder must not hide the others
            print(f"emotrack: warning: skipped {name}: {exc}", file=sys.stderr)
    if args.json:
        print(json.dumps(cards, indent=2))
        return 0
    if not cards:
        print("no bundled models")
        return 0
    from rich.console import Console
    from rich.table import Table

    cpu = any("cpu_ms_per_hop" in c["metrics"] for c in cards)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("", "model", "reads", *(["CPU ms/hop"] if cpu else []), "4Q F1", "trained on"):
        table.add_column(column, justify="right" if column in ("CPU ms/hop", "4Q F1") else "left")
    for c in cards:
        f1 = c["metrics"].get("4q_cv", {}).get("weighted_f1")
        ms = c["metrics"].get("cpu_ms_per_hop")
        table.add_row("*" if c["default"] else "", f"{c['name']} {c['version']}",
                      FRONTEND_WORDS.get(c["frontend"], str(c["frontend"])),
                      *([f"{ms:.1f}" if isinstance(ms, int | float) else "-"] if cpu else []),
                      f"{100 * f1:.1f} %" if isinstance(f1, int | float) else "-", c["datasets"])
    console = Console(highlight=False)
    console.print(table)
    console.print("* default (--model NAME picks another)   4Q F1: grouped 5-fold CV of its recipe")
    console.print(("" if cpu else "CPU cost per hop: the README's Models table   ") + "all card fields: --json")
    return 0


def _cmd_data(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.data_command != "prepare":
        parser.parse_args(["data", "--help"])
    from emotrack.data.cache import prepare

    summary = prepare(args.data_root, args.render_cache or args.cache, args.datasets, args.limit,
                      soundfont=args.soundfont)
    print(json.dumps(summary, indent=2))
    return 0


TRAIN_MODULES = {"torch", "onnx", "onnxscript", "sklearn", "pretty_midi", "onnxconverter_common"}


def _train_extra(exc: ImportError) -> EmotrackError:
    return EmotrackError(f"this command needs the train extra ({exc.name} missing): pip install 'emotrack[train]'")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived before a command installed its own handling (while imports or the model load)."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


HELD_IMPORTS = {
    "run": ("soundfile", "soxr", "onnxruntime", "numpy.fft", "emotrack.options", "emotrack.realtime.live",
            "emotrack.realtime.midi"),
    "analyze": ("soundfile", "soxr", "onnxruntime", "numpy.fft", "multiprocessing.synchronize", "emotrack.analyze",
                "emotrack.batch", "emotrack.inference", "emotrack.options", "emotrack.realtime.smoothing"),
    "sessions": ("emotrack.session.commands",),
    "report": ("emotrack.session.commands",),
    "personalize": ("emotrack.personal.commands",),
    "annotate": ("emotrack.personal.commands",),
}
"""What a command imports before it starts, with the stop signals held (:mod:`emotrack.stopsignals`): for `run`,
everything up to its own handlers; for `analyze`, all it loads, numpy's lazy fft included (``tests/test_signals.py``
checks that nothing is imported after the hold); for the others, their command module. `train` and friends import
torch unheld: a signal there is told apart in :func:`main`."""

HELD_COMMANDS = ("models", "devices")
"""Commands that run entirely with the stop signals held: they take well under a second, and Ctrl-C is handled as
they end (exit 130) rather than inside one of the C extensions they load (onnxruntime, PortAudio)."""


def main(argv: Sequence[str] | None = None) -> int:
    # Until `run` installs its own handlers, SIGTERM/SIGHUP end the process like Ctrl-C, not with a signal death:
    # a service manager that stops emotrack during start-up sees a clean exit.
    # A signal ignored on entry (SIGHUP under nohup) stays ignored: stopsignals.IGNORED_ON_ENTRY.
    if threading.current_thread() is threading.main_thread():
        for sig in OWN_HANDLED:
            signal.signal(sig, _terminated)
    command = None
    try:
        with held():  # a signal now is handled as the hold ends, outside any C extension's initialisation
            parser = build_parser()
            argv = list(sys.argv[1:] if argv is None else argv)
            args = parser.parse_args(argv)
            command = args.command
            for name in HELD_IMPORTS.get(command, ()):
                importlib.import_module(name)
        if command is None:
            parser.print_help()
            return 2
        if args.command == "run":
            args.config_smoothing_params = {}
            if args.config is not None:
                # the file gives defaults; flags on the command line still win
                values = load_config(args.config)
                args.config_smoothing_params = values.pop("smoothing_params", {})
                parser.run_parser.set_defaults(**values)
                args = parser.parse_args(argv)
                args.config_smoothing_params = load_config(args.config).get("smoothing_params", {})
            return _cmd_run(args)
        if args.command == "analyze":
            return _cmd_analyze(args)
        if args.command in HELD_COMMANDS:
            with held():
                return _cmd_devices(args) if args.command == "devices" else _cmd_models(args)
        if args.command == "sessions":
            from emotrack.session.commands import sessions_main

            return sessions_main(args)
        if args.command == "report":
            from emotrack.session.commands import report_main

            return report_main(args)
        if args.command in ("personalize", "annotate"):
            from emotrack.personal import commands

            return commands.personalize_main(args) if args.command == "personalize" else commands.annotate_main(args)
        try:
            if args.command == "export":
                from emotrack.export.onnx import export_main

                return export_main(args) or 0
            if args.command == "train":
                from emotrack.training.commands import train_main

                args.command_line = shlex.join(["emotrack", *argv])
                print(json.dumps(train_main(args), indent=2, default=str))
                return 0
            if args.command == "evaluate":
                from emotrack.training.commands import evaluate_main

                print(json.dumps(evaluate_main(args), indent=2, default=str))
                return 0
            if args.command == "data":
                return _cmd_data(args, parser)
            if args.command == "meta-train":
                from emotrack.training.meta import meta_train_main

                print(json.dumps(meta_train_main(args), indent=2))
                return 0
        except ImportError as exc:
            if exc.name and exc.name.split(".")[0] in TRAIN_MODULES:
                raise _train_extra(exc) from None
            raise
    except EmotrackError as exc:
        print(f"emotrack: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        return 0 if command == "run" else 143  # a stopped service is fine; a cut-short analysis is not
    except KeyboardInterrupt:
        return 130
    except ImportError as exc:
        # A signal during the import of a C extension (onnxruntime, in commands that do not hold signals for it)
        # surfaces as "ImportError: initialization failed" caused by the KeyboardInterrupt: it is still that
        # interrupt, not a broken installation.
        if isinstance(exc.__cause__, Terminated):
            return 0 if command == "run" else 143
        if isinstance(exc.__cause__, KeyboardInterrupt):
            return 130
        raise
    except BrokenPipeError:  # `emotrack models | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 0
    parser.print_help()
    return 2
