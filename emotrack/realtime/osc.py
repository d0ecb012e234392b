"""Send each hop to OSC receivers (TouchDesigner, Max, Resolume, VDMX, ...) as one UDP bundle.

Every hop becomes one bundle with timetag "immediately" holding one message per address in
:data:`ADDRESSES`, each with a single float32 argument. Bundles let receivers that honour OSC atomicity
apply valence and arousal together; "immediately" avoids receivers holding messages back when the sender's
and receiver's clocks disagree. Everything is float32, even counters, because TouchDesigner's OSC In CHOP
and most visual tools are happiest with floats (float32 counts exactly up to 2**24, 97 days of hops).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import NamedTuple

from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import UDPClient

from emotrack.errors import ConfigError
from emotrack.realtime.messages import QUADRANT_NAMES, HopMessage

__all__ = ["ADDRESSES", "SCALES", "OscAddress", "OscMarkerListener", "OscSender", "parse_target", "validate_prefix"]

logger = logging.getLogger(__name__)

SCALES = ("0..1", "-1..1")
"""Output ranges for valence and arousal: ``"0..1"`` maps ``x -> (x + 1) / 2``, ``"-1..1"`` sends as is."""


class OscAddress(NamedTuple):
    """One OSC address sent per hop, appended to the prefix."""

    suffix: str
    description: str
    range: str


ADDRESSES: tuple[OscAddress, ...] = (
    OscAddress("/valence", "smoothed valence (negative to positive)", "0..1 or -1..1 (scale)"),
    OscAddress("/arousal", "smoothed arousal (calm to energetic)", "0..1 or -1..1 (scale)"),
    OscAddress("/valence_raw", "model valence before smoothing", "0..1 or -1..1 (scale)"),
    OscAddress("/arousal_raw", "model arousal before smoothing", "0..1 or -1..1 (scale)"),
    OscAddress("/quadrant", "quadrant of the smoothed values: "
               + ", ".join(f"{q} {name}" for q, name in QUADRANT_NAMES.items()), "0..4"),
    OscAddress("/active", "1 while music is heard, 0 for silence, room noise or speech", "0 or 1"),
    OscAddress("/confidence", "how sure the tracker is that it hears music", "0..1"),
    OscAddress("/seq", "hop number since stream start", "0, 1, 2, ..."),
    OscAddress("/latency_ms", "audio-to-send latency of this hop, milliseconds", ">= 0"),
    OscAddress("/dropped", "audio samples lost to input overflow since stream start", ">= 0"),
)
"""Every address the sender emits, in bundle order; the README's OSC table is rendered from it."""

_BAD_PREFIX_CHARS = re.compile(r"[\s#*,?\[\]{}]")


def validate_prefix(prefix: str) -> str:
    """Check an OSC address prefix such as ``/emotrack`` and return it.

    It must start with ``/``, must not end with ``/`` or contain ``//``, and may not contain whitespace or
    the characters OSC reserves for patterns and bundles (``#*,?[]{}``).

    Raises
    ------
    ConfigError
        If the prefix is not a valid OSC address.
    """
    if not prefix.startswith("/"):
        raise ConfigError(f"OSC prefix {prefix!r} must start with '/'")
    if prefix.endswith("/") or "//" in prefix:
        raise ConfigError(f"OSC prefix {prefix!r} has an empty path part ('//' or a trailing '/')")
    if not prefix.isascii() or _BAD_PREFIX_CHARS.search(prefix):
        raise ConfigError(f"OSC prefix {prefix!r} may not contain spaces, non-ASCII or any of #*,?[]{{}}")
    return prefix


def _check_port(port: object, where: str) -> int:
    try:
        n = int(str(port), 10)
    except ValueError:
        raise ConfigError(f"OSC target {where!r}: port must be a number") from None
    if not 1 <= n <= 65535:
        raise ConfigError(f"OSC target {where!r}: port must be in 1..65535")
    return n


def parse_target(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (``[ADDR]:PORT`` for IPv6) into ``(host, port)``.

    Raises
    ------
    ConfigError
        If the colon, the host or a valid port (1..65535) is missing.
    """
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        raise ConfigError(f"OSC target {text!r} must be HOST:PORT, e.g. 127.0.0.1:9000")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"OSC target {text!r}: write IPv6 addresses in brackets, e.g. [::1]:9000")
    if not host:
        raise ConfigError(f"OSC target {text!r} has no host")
    return host, _check_port(port, text)


class OscSender:
    """Send every hop to one or more OSC receivers over UDP.

    Parameters
    ----------
    targets : list of (host, port)
        Receivers; each gets the same bundle. See :func:`parse_target`.
    prefix : str
        Prepended to every address in :data:`ADDRESSES`. Default ``"/emotrack"``.
    scale : {"0..1", "-1..1"}
        Range of valence and arousal (smoothed and raw). Default ``"0..1"``, the range sliders,
        opacities and most VJ software parameters expect.

    Raises
    ------
    ConfigError
        On no targets, a bad port, an unresolvable host, a bad prefix or an unknown scale.

    Notes
    -----
    UDP is fire-and-forget: a receiver that is not running costs nothing. A send that fails locally
    (e.g. the network is down) is logged once per target and counted in :attr:`errors`; it never stops
    the stream.
    """

    def __init__(
        self, targets: list[tuple[str, int]], prefix: str = "/emotrack", scale: str = "0..1"
    ) -> None:
        if not targets:
            raise ConfigError("no OSC targets given")
        if scale not in SCALES:
            raise ConfigError(f"unknown OSC scale {scale!r} (choose from {', '.join(SCALES)})")
        self.prefix = validate_prefix(prefix)
        self.scale = scale
        # x -> (x + offset) * gain; exact for "-1..1".
        self._offset, self._gain = (1.0, 0.5) if scale == "0..1" else (0.0, 1.0)
        self.targets = [(host, _check_port(port, f"{host}:{port}")) for host, port in targets]
        self.errors = 0
        """Sends that failed locally, over all targets."""
        self._failing: set[tuple[str, int]] = set()
        self._clients: list[tuple[tuple[str, int], UDPClient]] = []
        for host, port in self.targets:
            try:
                self._clients.append(((host, port), UDPClient(host, port)))
            except OSError:  # socket.gaierror included
                self.close()
                raise ConfigError(f"cannot resolve OSC host {host!r}") from None

    def _unit(self, x: float) -> float:
        # float(): python-osc rejects numpy scalars.
        return (float(x) + self._offset) * self._gain

    def build(self, msg: HopMessage) -> OscBundle:
        """Return the bundle :meth:`send` sends for one hop.

        ``/latency_ms`` is ``latency_ms["total"]``, or the sum of the stages if the pipeline gave no total.
        """
        total = msg.latency_ms.get("total")
        values = {
            "/valence": self._unit(msg.valence),
            "/arousal": self._unit(msg.arousal),
            "/valence_raw": self._unit(msg.valence_raw),
            "/arousal_raw": self._unit(msg.arousal_raw),
            "/quadrant": float(msg.quadrant),
            "/active": 1.0 if msg.active else 0.0,
            "/confidence": float(msg.confidence),
            "/seq": float(msg.seq),
            "/latency_ms": float(sum(msg.latency_ms.values()) if total is None else total),
            "/dropped": float(msg.dropped_samples),
        }
        bundle = OscBundleBuilder(IMMEDIATELY)
        prefix = self.prefix if msg.stream is None else f"{self.prefix}/{msg.stream}"
        for entry in ADDRESSES:
            message = OscMessageBuilder(prefix + entry.suffix)
            # Explicit "f": python-osc would infer "i" for a Python int.
            message.add_arg(values[entry.suffix], OscMessageBuilder.ARG_TYPE_FLOAT)
            bundle.add_content(message.build())
        return bundle.build()

    def send(self, msg: HopMessage) -> None:
        """Send one hop as one bundle to every target.

        Never raises on network errors, and does nothing after :meth:`close`, so a pipeline thread
        that races shutdown cannot crash.
        """
        bundle = self.build(msg)
        for target, client in self._clients:
            try:
                client.send(bundle)
            except OSError as exc:
                self.errors += 1
                if target not in self._failing:
                    self._failing.add(target)
                    logger.warning("OSC send to %s:%d failed: %s", *target, exc)
            else:
                self._failing.discard(target)

    def close(self) -> None:
        """Close the sockets. Idempotent."""
        clients, self._clients = self._clients, []
        for _, client in clients:
            client.close()

    def __enter__(self) -> OscSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OscMarkerListener:
    """Receive ``<prefix>/marker s`` over UDP (a button in TouchDesigner, Max or a phone OSC app) and call back.

    Runs python-osc's blocking UDP server in a daemon thread; ``on_marker(label, "osc")`` is called there.
    A marker with no string argument is labelled ``"mark"``; anything else at other addresses is ignored.
    """

    def __init__(self, host: str, port: int, prefix: str, on_marker) -> None:
        from pythonosc.dispatcher import Dispatcher
        from pythonosc.osc_server import BlockingOSCUDPServer

        dispatcher = Dispatcher()
        dispatcher.map(f"{prefix}/marker", self._handle)
        self.on_marker = on_marker
        self.errors = 0
        self.address = f"{host}:{port}{prefix}/marker"
        try:
            self._server = BlockingOSCUDPServer((host, port), dispatcher)
        except OSError as exc:
            raise ConfigError(f"cannot listen for OSC markers on {host}:{port}: {exc.strerror or exc}") from None
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="osc-markers", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def _handle(self, address: str, *args: object) -> None:
        label = next((a for a in args if isinstance(a, str)), "")
        try:
            self.on_marker(label, "osc")
        except Exception:  # a bad marker must not end the listener thread
            self.errors += 1
            logger.exception("OSC marker %r could not be recorded", label)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)
