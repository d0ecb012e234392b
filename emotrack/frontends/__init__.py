"""Front ends: turn each 0.5 s hop of mono audio into one feature frame.

Every front end is incremental: :meth:`FrontEnd.process` sees only the newest hop (plus whatever
history it keeps itself), so a hop costs the same however long the stream has run. Training, export
parity and the runtime all call these same classes, so features are the same numbers everywhere.
"""

from __future__ import annotations

import importlib
from typing import Any

from emotrack.errors import ModelError
from emotrack.frontends.base import FrontEnd, Normalizer
from emotrack.frontends.logmel import LogMel
from emotrack.frontends.musicnn import Musicnn
from emotrack.frontends.musicnn_tonal import MusicnnTonal
from emotrack.frontends.tonal import LogMelTonal
from emotrack.frontends.wave import Wave

__all__ = [
    "FRONTENDS", "FrontEnd", "LogMel", "LogMelTonal", "Musicnn", "MusicnnTonal", "Normalizer", "Wave", "make_frontend",
]

FRONTENDS: dict[str, type[FrontEnd]] = {
    "logmel": LogMel, "logmel_tonal": LogMelTonal, "musicnn": Musicnn, "musicnn_tonal": MusicnnTonal, "wave": Wave,
}


OPTIONAL = {"smile260": ("emotrack.frontends.smile", "Smile260", "pip install 'emotrack[opensmile]'")}
"""Front ends of optional extras, imported only when a model asks for one (opensmile alone costs ~0.6 s of
start-up, which every ``analyze`` worker process would pay)."""


def _load_optional(name: str) -> type[FrontEnd]:
    module, cls, install = OPTIONAL[name]
    try:
        FRONTENDS[name] = getattr(importlib.import_module(module), cls)
    except ImportError:  # the extra is not installed
        raise ModelError(f"this model needs the {name} front end: {install}") from None
    return FRONTENDS[name]


def make_frontend(name: str, params: dict[str, Any] | None = None) -> FrontEnd:
    """Build a front end by its registered name with the parameters stored in a model's metadata."""
    if name in OPTIONAL and name not in FRONTENDS:
        cls = _load_optional(name)
    else:
        try:
            cls = FRONTENDS[name]
        except KeyError:
            known = ", ".join(sorted({*FRONTENDS, *OPTIONAL}))
            raise ModelError(f"unknown front end {name!r} (known: {known})") from None
    try:
        return cls(**(params or {}))
    except (TypeError, ValueError) as exc:  # a missing/extra parameter, or a value the front end refuses
        detail = str(exc).replace("\n", "\\n")  # a fuzzed key may hold a newline: keep the message one line
        raise ModelError(f"bad parameters for front end {name!r}: {detail}") from None
