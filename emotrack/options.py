"""Validation at the edge: every ``run``/``analyze`` value checked once, with type and range, before anything loads.

Why one place: values arrive from the command line and from a TOML ``[run]`` table, and a wrong type or an
absurd range (``osc = 9000``, ``--ws-port 70000``, ``--threads 5000``) must become one ``emotrack: error:``
line naming the option, not a traceback deep in a socket call or thousands of threads. Output locations are
checked here too, so a bad ``--out`` or ``--csv`` fails before the model loads and the server starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emotrack.errors import ConfigError

__all__ = ["MAX_THREADS", "RUN_TYPES", "check_config_types", "check_midi", "check_output_dir", "check_output_file",
           "check_run"]

MAX_THREADS = 4 * (os.cpu_count() or 1)
"""More ONNX Runtime threads than this only adds contention (the issue measured 4,400 threads for 5000)."""

RUN_TYPES: dict[str, tuple[type, ...]] = {
    "file": (str,), "device": (str, int), "samplerate": (int,), "channels": (int, str), "blocksize": (int,),
    "latency": (str, int, float), "fast": (bool,), "loop": (bool,), "duration": (int, float), "model": (str,),
    "provider": (str,), "threads": (int,), "smoothing": (str,), "smoothing_params": (dict,), "osc": (list, str),
    "osc_prefix": (str,), "osc_range": (str,), "no_osc": (bool,), "ws_host": (str,), "ws_port": (int,),
    "ws_queue": (int,), "no_ws": (bool,), "csv": (str,), "quiet": (bool,), "osc_in": (str,), "no_osc_in": (bool,),
    "verbose": (bool,), "ws_token": (str,), "ws_require_token": (bool,), "ws_insecure": (bool,),
    "ws_allow_origin": (list, str), "ws_allow_host": (list, str), "ws_cert": (str,), "ws_key": (str,),
    "ws_max_clients": (int,), "session": (str,), "append": (bool,), "client": (str,), "notes": (str,),
    "keep_audio": (bool,), "per_channel": (bool,), "url": (list, str), "midi": (str, int), "midi_virtual": (str,),
    "midi_channel": (int,), "midi_cc": (list, str), "midi_14bit": (bool,), "midi_rate": (int, float),
    "midi_refresh": (int, float), "mdns": (bool,),
}
"""The type(s) a ``[run]`` key of a config file may have (TOML's own types)."""

RANGES: dict[str, tuple[float, float, str]] = {
    "ws_port": (0, 65535, "0 (any free port) to 65535"),
    "threads": (1, MAX_THREADS, f"1 to {MAX_THREADS} (4 per core)"),
    "ws_queue": (1, 10_000, "1 to 10000"),
    "ws_max_clients": (1, 10_000, "1 to 10000"),
    "samplerate": (1000, 768_000, "1000 to 768000 Hz"),
    "channels": (1, 256, "1 to 256"),
    "blocksize": (0, 1 << 20, "0 (the device's choice) to 1048576 frames"),
    "duration": (1e-3, 1e9, "a positive number of seconds"),
    "midi_channel": (1, 16, "1 to 16"),
    "midi_rate": (1, 1000, "1 to 1000 Hz"),
    "midi_refresh": (0, 3600, "0 (every hop) to 3600 seconds"),
}


def check_config_types(values: Mapping[str, Any], source: str) -> None:
    """Each key of a config ``[run]`` table has a TOML type the option can take (bool is not a number here)."""
    for key, value in values.items():
        allowed = RUN_TYPES[key]
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        if key in ("osc", "ws_allow_origin", "ws_allow_host", "url", "midi_cc") and isinstance(value, list):
            ok = all(isinstance(v, str) for v in value)
        texts = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        if ok and any(isinstance(t, str) and "\x00" in t for t in texts):  # TOML allows \u0000; no path or host does
            raise ConfigError(f"{source}: {key} holds a NUL character (\\u0000): {value!r}")
        if not ok:
            names = " or ".join("table" if t is dict else "list of strings" if t is list else t.__name__
                                for t in allowed)
            raise ConfigError(f"{source}: {key} must be {names}, got {type(value).__name__} {value!r}")


def check_range(name: str, value: float | None) -> None:
    """``value`` lies in the range of :data:`RANGES` for option ``name`` (``None``: not given)."""
    if value is None or name not in RANGES or isinstance(value, str):  # a --channels selection: checked later
        return
    low, high, text = RANGES[name]
    if not low <= value <= high:
        big = isinstance(value, int) and abs(value) >= 10**15  # :g of a 10**400 int overflows
        shown = f"a {len(str(abs(value)))}-digit number" if big else f"{value:g}"
        raise ConfigError(f"--{name.replace('_', '-')} must be {text}, got {shown}")


def check_output_file(path: Path | None, option: str) -> None:
    """``path`` can be created or overwritten as a file: its folder exists and is writable, it is no folder."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name")
    parent = path.parent
    if not parent.is_dir():
        what = "is a file" if parent.exists() else "does not exist"
        raise ConfigError(f"{option} {path}: the folder {parent} {what}")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{option} {path}: the folder {parent} is not writable")


def check_output_dir(path: Path, option: str = "--out") -> None:
    """``path`` is (or can be made) a writable folder; made here, so a later write never finds it missing."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            raise ConfigError(f"{option} {path}: {p} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot create it ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"{option} {path} is not writable")


def check_run(values: Mapping[str, Any]) -> None:
    """Ranges of the numeric ``run`` options and the ``--csv`` location, from the final values."""
    for name in RANGES:
        check_range(name, values.get(name))
    check_output_file(values.get("csv"), "--csv")
    if values.get("session") is not None:
        check_output_dir(values["session"], "--session")
    for name in ("ws_cert", "ws_key"):
        path = values.get(name)
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"--{name.replace('_', '-')} {path}: no such file")
    check_midi(values)


def check_midi(values: Mapping[str, Any]) -> None:
    """One MIDI output at most, its CC map valid (:func:`emotrack.realtime.midi.cc_map`), no MIDI option without it."""
    if values.get("midi") is not None and values.get("midi_virtual") is not None:
        raise ConfigError("give either --midi PORT or --midi-virtual NAME, not both")
    from emotrack.realtime.midi import cc_map, parse_cc_overrides

    ccs = values.get("midi_cc") or {}
    if not isinstance(ccs, Mapping):  # a config file's list of NAME=CC strings
        ccs = parse_cc_overrides([ccs] if isinstance(ccs, str) else ccs)
    if values.get("midi") is None and values.get("midi_virtual") is None:
        given = [name for name, unset in (("midi_cc", not ccs), ("midi_14bit", not values.get("midi_14bit")),
                                          ("midi_rate", values.get("midi_rate") is None),
                                          ("midi_channel", values.get("midi_channel") in (1, None)),
                                          ("midi_refresh", values.get("midi_refresh") in (5, None))) if not unset]
        if given:
            raise ConfigError(f"--{given[0].replace('_', '-')} needs --midi PORT or --midi-virtual NAME")
        return
    cc_map(ccs, fourteen_bit=bool(values.get("midi_14bit")))
