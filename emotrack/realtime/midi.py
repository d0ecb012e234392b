"""Send each hop as MIDI control changes (Ableton Live, Resolume, lighting desks, VJ tools that take MIDI, not OSC).

Every value in :data:`MIDI_CCS` goes to one CC number (overridable) on one channel, through mido with the
python-rtmidi backend (the ``midi`` extra; imported only when a MIDI output is asked for). Why these choices:

* The default CC numbers 20-26 are "undefined" in the MIDI 1.0 control-change table, so no synth or desk gives
  them a meaning of its own; their 14-bit partners 52-58 (n + 32) are undefined too.
* A CC is sent only when its value changed, plus every CC every ``refresh_s`` seconds of audio (default 5), so a
  receiver that starts or reconnects late gets the current state; MIDI learn needs movement, which the music gives.
* ``fourteen_bit``: the continuous values (valence, arousal, their raw values, confidence) become MSB/LSB pairs,
  CC n then CC n + 32, as the MIDI spec defines for n < 32; quadrant and active stay single 7-bit CCs.
* ``rate``: a small timer thread ramps the continuous values linearly from where they are to each new hop's value
  over one hop (like Max's ``line``), so 2 Hz steps do not show; this adds up to one hop of delay.
* Several streams in one run (``--per-channel``, ``--url``): each stream gets its own channel, ``channel``,
  ``channel + 1``, ... in the order the streams first send.

Send failures (a port that vanished) are counted in :attr:`MidiSink.errors` and logged once; they never stop
the stream.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from emotrack.errors import ConfigError

if TYPE_CHECKING:
    from emotrack.realtime.messages import HopMessage
    from emotrack.realtime.sinks import Hop

__all__ = ["CONTINUOUS", "MIDI_CCS", "MidiCC", "MidiSink", "cc_map", "cc_value", "output_port_names",
           "parse_cc_overrides", "resolve_port"]

logger = logging.getLogger(__name__)

EXTRA = "MIDI needs the midi extra: pip install 'emotrack[midi]'"


class MidiCC(NamedTuple):
    """One value sent as a control change."""

    field: str
    default: int
    description: str
    value: str


MIDI_CCS: tuple[MidiCC, ...] = (
    MidiCC("valence", 20, "smoothed valence (negative to positive)", "-1..1 -> 0..127 (64 = neutral)"),
    MidiCC("arousal", 21, "smoothed arousal (calm to energetic)", "-1..1 -> 0..127 (64 = neutral)"),
    MidiCC("valence_raw", 22, "model valence before smoothing", "-1..1 -> 0..127"),
    MidiCC("arousal_raw", 23, "model arousal before smoothing", "-1..1 -> 0..127"),
    MidiCC("quadrant", 24, "quadrant of the smoothed values: 0 no music, 1 happy / energetic, 2 tense / agitated, "
           "3 sad / low, 4 calm / relaxed", "quadrant / 4 -> 0, 32, 64, 95, 127"),
    MidiCC("confidence", 25, "how sure the tracker is that it hears music", "0..1 -> 0..127"),
    MidiCC("active", 26, "music heard or not (silence, room noise, speech)", "0 or 127"),
)
"""Every CC the sink sends, in send order, with its default number; the README's MIDI table is rendered from it.
With ``--midi-14bit`` the continuous ones also send their LSB on CC number + 32 (0..16383 in all)."""

CONTINUOUS = frozenset({"valence", "arousal", "valence_raw", "arousal_raw", "confidence"})
"""Values that ramp with ``rate`` and become 14-bit pairs; quadrant and active are steps."""

_BIPOLAR = frozenset({"valence", "arousal", "valence_raw", "arousal_raw"})


def cc_value(field: str, x: float, bits: int = 7) -> int | None:
    """The CC value (0..127, or 0..16383 for 14 bits) of one field's value; None for a non-finite one."""
    if field in _BIPOLAR:
        unit = (float(x) + 1.0) / 2.0
    elif field == "quadrant":
        unit = float(x) / 4.0
    elif field == "active":
        unit = 1.0 if x else 0.0
    else:
        unit = float(x)
    if not math.isfinite(unit):
        return None
    top = (1 << bits) - 1
    return int(min(1.0, max(0.0, unit)) * top + 0.5)  # half up, not Python's half-to-even


def _values(msg: HopMessage) -> dict[str, float]:
    return {"valence": msg.valence, "arousal": msg.arousal, "valence_raw": msg.valence_raw,
            "arousal_raw": msg.arousal_raw, "quadrant": msg.quadrant, "confidence": msg.confidence,
            "active": 1.0 if msg.active else 0.0}


def parse_cc_overrides(items: Iterable[str]) -> dict[str, int | None]:
    """``["valence=30", "valence_raw=off"]`` (``--midi-cc``, repeatable) as ``{"valence": 30, "valence_raw": None}``."""
    out: dict[str, int | None] = {}
    for item in items:
        name, sep, number = str(item).partition("=")
        name = name.strip().replace("-", "_")
        number = number.strip().lower()
        if not sep or not name:
            raise ConfigError(f"--midi-cc expects NAME=CC (e.g. valence=30) or NAME=off, got {item!r}")
        if number in ("off", "none"):
            out[name] = None
            continue
        try:
            out[name] = int(number, 10)
        except ValueError:
            raise ConfigError(f"--midi-cc {item}: the CC number must be an integer 0-119 or off") from None
    return out


def cc_map(overrides: Mapping[str, int | None] | None = None, *, fourteen_bit: bool = False) -> dict[str, int]:
    """The CC number of every value sent: :data:`MIDI_CCS`' defaults with ``overrides`` (None: not sent).

    Raises
    ------
    ConfigError
        For an unknown value name, a number outside 0-119 (120-127 are channel mode messages), a 14-bit value on
        CC 32 or above (its LSB would be n + 32), or two values (or an LSB) on one CC number.
    """
    ccs: dict[str, int | None] = {c.field: c.default for c in MIDI_CCS}
    for name, number in (overrides or {}).items():
        if name not in ccs:
            raise ConfigError(f"--midi-cc: unknown value {name!r} (choose from {', '.join(ccs)})")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 119):
            raise ConfigError(f"--midi-cc {name}={number}: CC numbers are 0 to 119 (120-127 are channel mode "
                              "messages)")
        ccs[name] = number
    used: dict[int, str] = {}
    for name, number in ccs.items():
        if number is None:
            continue
        wide = fourteen_bit and name in CONTINUOUS
        if wide and number >= 32:
            raise ConfigError(f"--midi-14bit: {name} is on CC {number}; 14-bit pairs need CC 0-31 (the LSB goes "
                              "on CC n + 32)")
        for n, what in ((number, name), (number + 32, f"{name}'s LSB")) if wide else ((number, name),):
            if n in used:
                raise ConfigError(f"--midi-cc: {what} and {used[n]} are both on CC {n}")
            used[n] = what
    if not used:
        raise ConfigError("--midi-cc: every value is off; there is nothing to send")
    return {name: number for name, number in ccs.items() if number is not None}


def _mido(backend: bool = True):
    try:
        import mido

        if backend:
            import rtmidi  # noqa: F401  (mido's default backend; missing, it would only fail at the first open)
    except ImportError:
        raise ConfigError(EXTRA) from None
    return mido


def _backend_hint() -> str:
    """Why the default rtmidi backend cannot work here, or ''."""
    if not sys.platform.startswith("linux") or os.path.exists("/dev/snd/seq"):
        return ""
    if "UNIX_JACK" in os.environ.get("MIDO_BACKEND", ""):
        return ""
    return ("no ALSA sequencer (/dev/snd/seq is missing: load the snd-seq kernel module), or use JACK: "
            "MIDO_BACKEND=mido.backends.rtmidi/UNIX_JACK")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def output_port_names() -> list[str]:
    """MIDI output ports of this machine, as ``--midi`` takes them (index or name)."""
    mido = _mido()
    hint = _backend_hint()
    if hint:
        raise ConfigError(f"cannot list MIDI ports: {hint}")
    try:
        return list(dict.fromkeys(mido.get_output_names()))
    except Exception as exc:  # rtmidi.SystemError and friends: the MIDI system itself failed
        raise ConfigError(f"cannot list MIDI ports: {_one_line(exc)}") from None


def _listing(names: list[str]) -> str:
    return ", ".join(f"{i} {n!r}" for i, n in enumerate(names)) or "none (--midi-virtual NAME opens one)"


def resolve_port(spec: str | int, names: list[str]) -> str:
    """The output port ``spec`` means: an index, the exact name, or the one name containing it (any case).

    Raises
    ------
    ConfigError
        For no match or several matches, listing the ports there are.
    """
    spec = str(spec).strip()
    if not spec:
        raise ConfigError(f"--midi needs a port name or index; available: {_listing(names)}")
    if spec.isdigit():
        if int(spec) < len(names):
            return names[int(spec)]
        raise ConfigError(f"no MIDI output port {spec}; available: {_listing(names)}")
    if spec in names:
        return spec
    matches = [n for n in names if spec.lower() in n.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConfigError(f"no MIDI output port matches {spec!r}; available: {_listing(names)}")
    raise ConfigError(f"MIDI port {spec!r} matches several: {', '.join(map(repr, matches))}; give more of the name "
                      "or the index")


def _open(port: str | int | None, virtual: str | None) -> Any:
    mido = _mido()
    hint = _backend_hint()
    what = f"virtual port {virtual!r}" if virtual is not None else f"port {port!r}"
    if hint:
        raise ConfigError(f"cannot open MIDI {what}: {hint}")
    if virtual is not None:
        if not virtual.strip():
            raise ConfigError("--midi-virtual needs a port name")
        if sys.platform == "win32":
            raise ConfigError("Windows MIDI has no virtual ports: create one with loopMIDI and use --midi NAME")
        try:
            return mido.open_output(virtual, virtual=True, client_name="emotrack")
        except Exception as exc:
            raise ConfigError(f"cannot open MIDI {what}: {_one_line(exc)}") from None
    name = resolve_port(port, output_port_names())
    try:
        return mido.open_output(name)
    except Exception as exc:
        raise ConfigError(f"cannot open MIDI port {name!r}: {_one_line(exc)}") from None


class MidiSink:
    """A live output (:class:`~emotrack.realtime.sinks.Sink`) sending each hop as control changes.

    Parameters
    ----------
    port : str or int, optional
        An existing output port: index or name (substring), see :func:`resolve_port`.
    virtual : str, optional
        Name of a virtual output port to open instead (macOS, Linux); other programs select it as an input.
    channel : int
        MIDI channel 1-16 (the first stream's, with several streams).
    ccs : mapping of str to int or None
        CC numbers overriding :data:`MIDI_CCS`' defaults; None leaves a value out.
    fourteen_bit : bool
        Continuous values as 14-bit MSB/LSB pairs (CC n, n + 32).
    rate : float, optional
        Hz at which continuous values are ramped between hops; None sends once per hop.
    refresh_s : float
        Every CC is sent again at least this often (seconds of audio); 0 sends every CC every hop.
    output : object, optional
        An open mido-like output port (``send(message)``, ``close()``), instead of ``port``/``virtual``.
    clock : callable
        Monotonic seconds for the ramps (tests pass their own).

    Raises
    ------
    ConfigError
        For a bad mapping or channel, a port that is not there (the message lists those that are), or no midi extra.
    """

    name = "midi"

    def __init__(self, port: str | int | None = None, *, virtual: str | None = None, channel: int = 1,
                 ccs: Mapping[str, int | None] | None = None, fourteen_bit: bool = False, rate: float | None = None,
                 refresh_s: float = 5.0, output: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        if sum(x is not None for x in (port, virtual, output)) != 1:
            raise ConfigError("give either --midi PORT or --midi-virtual NAME, not both")
        if not 1 <= channel <= 16:
            raise ConfigError(f"--midi-channel must be 1 to 16, got {channel}")
        if rate is not None and not 1 <= rate <= 1000:
            raise ConfigError(f"--midi-rate must be 1 to 1000 Hz, got {rate:g}")
        self.ccs = cc_map(ccs, fourteen_bit=fourteen_bit)
        self.fourteen_bit = fourteen_bit
        self.channel = channel
        self.rate = rate
        self.refresh_s = refresh_s
        self.clock = clock
        self._message = _mido(backend=output is None).Message
        self.output = output if output is not None else _open(port, virtual)
        self.port_name = getattr(self.output, "name", None) or str(virtual or port)
        self._errors = 0
        self._failing = False
        self._closed = False
        self._lock = threading.Lock()
        self._streams: list[str | None] = []
        self._state: dict[str | None, _StreamState | None] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if rate is not None:
            self._thread = threading.Thread(target=self._ramp_loop, name="midi-ramp", daemon=True)
            self._thread.start()

    @property
    def errors(self) -> int:
        """Messages that could not be sent."""
        return self._errors

    def describe(self) -> str:
        """One line for the run's header: where the CCs go."""
        numbers = sorted(self.ccs.values())
        ccs = f"{numbers[0]}-{numbers[-1]}" if numbers == list(range(numbers[0], numbers[-1] + 1)) else str(numbers)
        bits = " (14-bit, LSB on CC + 32)" if self.fourteen_bit else ""
        rate = f", ramped at {self.rate:g} Hz" if self.rate else ""
        return f"MIDI CC {ccs}{bits} on channel {self.channel} to {self.port_name!r}{rate}"

    def send(self, hop: Hop) -> None:
        self.send_message(hop.message)

    def send_message(self, msg: HopMessage) -> None:
        """Send one hop's CCs (the continuous ones only start a ramp when ``rate`` is set)."""
        with self._lock:
            if self._closed:
                return
            state = self._stream(msg.stream)
            if state is None:
                return
            now = self.clock()
            if state.last_time is not None and msg.stream_time > state.last_time:
                state.hop_s = msg.stream_time - state.last_time
            state.last_time = msg.stream_time
            force = self.refresh_s <= 0 or state.next_refresh is None or msg.stream_time >= state.next_refresh
            if force:
                state.next_refresh = msg.stream_time + self.refresh_s
            for field, x in _values(msg).items():
                if field not in self.ccs:
                    continue
                if self.rate is not None and field in CONTINUOUS:
                    start = state.ramp_value(field, now, default=x)
                    state.ramps[field] = (start, float(x), now, state.hop_s)
                    x = start
                self._emit(state, field, x, force)

    def _ramp_loop(self) -> None:
        period = 1.0 / float(self.rate or 1.0)
        while not self._stop.wait(period):
            self.tick()

    def tick(self) -> None:
        """Send the ramps' current values where they changed (the timer thread calls this at ``rate``)."""
        with self._lock:
            if self._closed:
                return
            now = self.clock()
            for state in filter(None, self._state.values()):
                for field in list(state.ramps):
                    self._emit(state, field, state.ramp_value(field, now), False)

    def _stream(self, stream: str | None) -> _StreamState | None:
        if stream not in self._state:
            channel = self.channel + len(self._streams)
            self._streams.append(stream)
            if channel > 16:
                logger.warning("MIDI: stream %s would need channel %d; it is not sent", stream, channel)
                self._state[stream] = None
            else:
                self._state[stream] = _StreamState(channel - 1)
        return self._state[stream]

    def _emit(self, state: _StreamState, field: str, x: float, force: bool) -> None:
        wide = self.fourteen_bit and field in CONTINUOUS
        value = cc_value(field, x, 14 if wide else 7)
        if value is None or (not force and state.sent.get(field) == value):
            return
        number = self.ccs[field]
        parts = ((number, value >> 7), (number + 32, value & 0x7F)) if wide else ((number, value),)
        try:
            for control, v in parts:  # MSB first: a receiver resets the LSB when the MSB arrives
                self.output.send(self._message("control_change", channel=state.channel, control=control, value=v))
        except Exception as exc:
            self._errors += 1
            if not self._failing:
                self._failing = True
                logger.warning("MIDI send to %s failed (%s); further failures are only counted", self.port_name,
                               _one_line(exc))
            return
        self._failing = False
        state.sent[field] = value

    def close(self) -> None:
        """Stop the ramps and close the port. Idempotent; later hops are ignored."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        try:
            self.output.close()
        except Exception as exc:
            logger.warning("MIDI port %s did not close cleanly: %s", self.port_name, _one_line(exc))


class _StreamState:
    """What one stream last sent, and its ramps: field -> (start value, end value, start time, duration)."""

    def __init__(self, channel: int) -> None:
        self.channel = channel
        self.sent: dict[str, int] = {}
        self.ramps: dict[str, tuple[float, float, float, float]] = {}
        self.last_time: float | None = None
        self.next_refresh: float | None = None
        self.hop_s = 0.5

    def ramp_value(self, field: str, now: float, default: float = 0.0) -> float:
        ramp = self.ramps.get(field)
        if ramp is None:
            return float(default)
        start, end, t0, length = ramp
        share = 1.0 if length <= 0 else min(1.0, max(0.0, (now - t0) / length))
        return start + (end - start) * share
