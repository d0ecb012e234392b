"""Command-line interface: ``emotrack run | analyze | sessions | report | devices | models | export | train | evaluate |
data``.

The CLI only parses options and reports errors; the work is done by the library. Any
:class:`~emotrack.errors.EmotrackError` becomes one line on stderr and a non-zero exit status.

The package holds the parser (:mod:`~emotrack.cli.parser`, its help text in :mod:`~emotrack.cli.help_text`), the
``run --config`` reader (:mod:`~emotrack.cli.config`), the commands the CLI runs itself
(:mod:`~emotrack.cli.commands`, :mod:`~emotrack.cli.listing`) and, here, :func:`main`: dispatch, and how errors and
stop signals end the process.
"""

from __future__ import annotations

import importlib
import json
import os
import shlex
import signal
import sys
import threading
from collections.abc import Sequence

from emotrack.cli import commands
from emotrack.cli.config import RUN_DESTS, load_config
from emotrack.cli.listing import models_command
from emotrack.cli.parser import build_parser
from emotrack.errors import EmotrackError
from emotrack.stopsignals import OWN_HANDLED, held

__all__ = ["RUN_DESTS", "build_parser", "load_config", "main"]


TRAIN_MODULES = {"torch", "onnx", "onnxscript", "sklearn", "pretty_midi", "onnxconverter_common", "librosa"}


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
            return commands.run_command(args)
        if args.command == "analyze":
            return commands.analyze_command(args)
        if args.command in HELD_COMMANDS:
            with held():
                return commands.devices_command(args) if args.command == "devices" else models_command(args)
        if args.command == "sessions":
            from emotrack.session.commands import sessions_main

            return sessions_main(args)
        if args.command == "report":
            from emotrack.session.commands import report_main

            return report_main(args)
        if args.command in ("personalize", "annotate"):
            from emotrack.personal import commands as personal

            return personal.personalize_main(args) if args.command == "personalize" else personal.annotate_main(args)
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
                return commands.data_command(args, parser)
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
