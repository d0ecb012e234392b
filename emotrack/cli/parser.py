"""The ``emotrack`` argument parser: every command's options, with their help and examples.

What the command line accepts lives here and nowhere else; :mod:`emotrack.cli` dispatches the parsed arguments,
:mod:`emotrack.options` checks what argparse cannot (ranges, files, combinations).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emotrack import __version__
from emotrack.cli.help_text import COMMAND_HELP
from emotrack.errors import ConfigError
from emotrack.realtime.smoothing import DEFAULT_SMOOTHING, parse_param

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
