"""The ``personalize`` and ``annotate`` subcommands (parsers in :mod:`emotrack.cli`)."""

from __future__ import annotations

import argparse
import json

from emotrack.errors import ConfigError
from emotrack.personal.head import LR, STEPS


def personalize_main(args: argparse.Namespace) -> int:
    from emotrack.personal.personalize import describe, personalize

    steps = STEPS if args.steps is None else args.steps
    lr = LR if args.lr is None else args.lr
    if not 0 <= steps <= 100_000:
        raise ConfigError(f"--steps must be 0 to 100000, not {steps}")
    if not 0 < lr <= 10:
        raise ConfigError(f"--lr must be in (0, 10], not {lr}")
    if not args.audio.is_file():
        raise ConfigError(f"audio file not found: {args.audio}")
    if args.out is not None and args.out.suffix != ".onnx":
        raise ConfigError(f"--out must name an .onnx file, not {args.out}")
    result = personalize(args.audio, args.labels, args.model, args.out, steps=steps, lr=lr)
    if args.json:
        print(json.dumps({"out": str(result.out), "name": result.card.name, "seconds": round(result.seconds, 2),
                          **result.info}, indent=2))
    else:
        print(describe(result))
        print(f"use it: emotrack run --model {result.out}   /   emotrack analyze --model {result.out} SONG")
    return 0


def annotate_main(args: argparse.Namespace) -> int:
    from emotrack.personal.server import serve_annotation

    if not args.audio.is_file():
        raise ConfigError(f"audio file not found: {args.audio}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0 to 65535, not {args.port}")
    serve_annotation(args.audio, args.out, port=args.port, once=args.once, open_browser=not args.no_browser)
    return 0
