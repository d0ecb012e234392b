"""``emotrack models``: the table of the models emotrack can run, from their cards."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

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


def models_command(args: argparse.Namespace) -> int:
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
