"""WebSocket DAT callbacks for emotrack: each message becomes Table DAT rows, which a DAT to CHOP makes channels.

Put this text in the Callbacks DAT of a WebSocket DAT (Network Address ``127.0.0.1``, Network Port ``8765``) and
add three Table DATs next to it: ``emotrack_values`` (name | value: valence, arousal, valence_raw, arousal_raw,
quadrant, active, confidence, seq, latency_ms, dropped_samples), ``emotrack_info`` (what the ``hello`` said) and
``emotrack_markers`` (id | stream_time | source | label, one row per marker). Rename them in ``TABLES`` below.
A DAT to CHOP on ``emotrack_values`` (Output: Channel per Row, first column names, second values) and a Lag CHOP
(0.5 s up and down) give smooth channels; see README.md beside this file.

emotrack sends ``hello`` once, then ``history`` (the run so far), then one ``emotion`` per 0.5 s hop and a ``marker``
whenever a moment is marked; ``pong`` and ``error`` only answer messages a client sent. ``op`` and ``debug`` are
TouchDesigner's own.
"""

import json

TABLES = {"values": "emotrack_values", "info": "emotrack_info", "markers": "emotrack_markers"}
"""Names of the Table DATs this script writes, relative to the WebSocket DAT's network."""

STREAM = None
"""With several streams (``emotrack run --per-channel`` or ``--url``), the one to follow; None: the first one heard."""

VALUE_ROWS = ("valence", "arousal", "valence_raw", "arousal_raw", "quadrant", "active", "confidence", "seq",
              "latency_ms", "dropped_samples")
"""Rows of the values table, in order; one CHOP channel each after a DAT to CHOP."""


def _table(key):
    return op(TABLES[key])  # noqa: F821 (op is TouchDesigner's)


def _set(table, name, value):
    """Set the row ``name`` of a two-column name | value table, adding it the first time."""
    if table is None:
        return
    if table.row(name) is None:
        table.appendRow([name, value])
    else:
        table[name, 1] = value


def _values(valence, arousal, valence_raw, arousal_raw, quadrant, active, confidence, seq, latency, dropped):
    table = _table("values")
    row = (valence, arousal, valence_raw, arousal_raw, quadrant, 1 if active else 0, confidence, seq, latency, dropped)
    for name, value in zip(VALUE_ROWS, row, strict=True):
        _set(table, name, value)


_following = [STREAM]


def on_emotion(msg):
    """One hop: values in [-1, 1]; quadrant 0 and active 0 mean no music (the smoothed values then glide to 0)."""
    name = msg.get("stream")  # only present when emotrack tracks several streams
    if name is not None:
        if _following[0] is None:
            _following[0] = name
        elif name != _following[0]:
            return  # another stream's hop: the channels would jump between streams
    _values(msg["valence"], msg["arousal"], msg["raw"]["valence"], msg["raw"]["arousal"], msg["quadrant"],
            msg["active"], msg["confidence"], msg["seq"], msg["latency_ms"].get("total", 0.0), msg["dropped_samples"])


def on_hello(msg):
    """What the stream is: model, hop length, sample rate, smoother, range."""
    table = _table("info")
    for key, value in msg.items():
        if not isinstance(value, (dict, list)):
            _set(table, key, value)


def on_history(msg):
    """The run so far, as columns; only the newest hop is kept here, so the channels start at the current state."""
    if not msg.get("stream_time"):
        return
    hops = len(msg["stream_time"])
    _set(_table("info"), "history_hops", hops)
    for name in ("valence", "arousal", "valence_raw", "arousal_raw"):
        _set(_table("values"), name, msg[name][-1])
    _set(_table("values"), "active", 1 if msg["active"][-1] else 0)
    for marker in msg.get("markers", []):
        on_marker(marker)


def on_marker(msg):
    """A marked moment (terminal, dashboard, OSC or a client): one row in the markers table."""
    table = _table("markers")
    if table is None:
        return
    if table.numRows == 0:
        table.appendRow(["id", "stream_time", "source", "label"])
    table.appendRow([msg.get("id"), msg.get("stream_time"), msg.get("source"), msg.get("label")])


HANDLERS = {"emotion": on_emotion, "hello": on_hello, "history": on_history, "marker": on_marker}


def onConnect(dat):
    debug("emotrack: connected")  # noqa: F821 (debug is TouchDesigner's)


def onDisconnect(dat):
    debug("emotrack: disconnected (turn on Auto-Reconnect on the WebSocket DAT)")  # noqa: F821


def onReceiveText(dat, rowIndex, message):
    """Every text message from emotrack is one JSON object with a ``type``."""
    try:
        msg = json.loads(message)
    except ValueError:
        debug("emotrack: not JSON: " + message[:80])  # noqa: F821
        return
    handler = HANDLERS.get(msg.get("type"))
    if handler is None:
        debug("emotrack: " + message[:200])  # noqa: F821 ("pong", "error": replies to what we sent)
    else:
        handler(msg)


def onReceiveBinary(dat, contents):
    return


def onReceivePing(dat, contents):
    dat.sendPong(contents)


def onReceivePong(dat, contents):
    return


def onMonitorMessage(dat, message):
    return
