"""``emotrack run --config FILE``: the ``[run]`` table of a TOML file as defaults for the run options."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from emotrack.errors import ConfigError

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
