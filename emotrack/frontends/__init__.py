"""Front ends: turn each 0.5 s hop of mono audio into one feature frame.

Every front end is incremental: :meth:`FrontEnd.process` sees only the newest hop (plus whatever
history it keeps itself), so a hop costs the same however long the stream has run. Training, export
parity and the runtime all call these same classes, so features are the same numbers everywhere.
"""

from __future__ import annotations

from typing import Any

from emotrack.errors import ModelError
from emotrack.frontends.base import FrontEnd, Normalizer
from emotrack.frontends.logmel import LogMel
from emotrack.frontends.musicnn import Musicnn
from emotrack.frontends.tonal import LogMelTonal
from emotrack.frontends.wave import Wave

__all__ = ["FRONTENDS", "FrontEnd", "LogMel", "LogMelTonal", "Musicnn", "Normalizer", "Wave", "make_frontend"]

FRONTENDS: dict[str, type[FrontEnd]] = {
    "logmel": LogMel, "logmel_tonal": LogMelTonal, "musicnn": Musicnn, "wave": Wave,
}


def _register_optional() -> None:
    try:
        from emotrack.frontends.smile import Smile260
    except ImportError:  # the opensmile extra is not installed
        return
    FRONTENDS["smile260"] = Smile260


_register_optional()


def make_frontend(name: str, params: dict[str, Any] | None = None) -> FrontEnd:
    """Build a front end by its registered name with the parameters stored in a model's metadata."""
    if name == "smile260" and name not in FRONTENDS:
        raise ModelError("this model needs the openSMILE front end: pip install 'emotrack[opensmile]'")
    try:
        cls = FRONTENDS[name]
    except KeyError:
        raise ModelError(f"unknown front end {name!r} (known: {', '.join(sorted(FRONTENDS))})") from None
    try:
        return cls(**(params or {}))
    except TypeError as exc:
        raise ModelError(f"bad parameters for front end {name!r}: {exc}") from None
