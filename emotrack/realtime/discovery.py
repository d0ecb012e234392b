"""Announce a running ``emotrack run`` on the LAN over mDNS/DNS-SD, so receivers find it without a typed-in IP.

Two services, through python-zeroconf (imported only when announcing):

* ``_emotrack._tcp``: the WebSocket stream and dashboard, with the TXT records in :data:`TXT_KEYS`, so a client
  knows the path, schema and whether it needs TLS or a token before it connects (the token itself is never
  announced);
* ``_osc._udp``: the OSC marker listener, when one runs (the type OSC controllers such as TouchOSC browse).

Why on by default only for non-loopback binds: a service on 127.0.0.1 cannot be reached from the LAN, and a
laptop on a venue network should not advertise what it does not serve. ``--mdns`` forces it on (loopback
services are then announced on the loopback interface only, for tools on the same machine), ``--no-mdns`` off.
Announcing never stops the stream: a failure is one warning line. :meth:`Announcer.close` sends the goodbyes.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from emotrack.realtime.access import ANY_ADDRESS, is_loopback

__all__ = ["OSC_TYPE", "SERVICE_TYPE", "TXT_KEYS", "Announcer", "Service", "announce", "run_services", "server_name",
           "wanted"]

logger = logging.getLogger(__name__)

SERVICE_TYPE = "_emotrack._tcp.local."
OSC_TYPE = "_osc._udp.local."

TXT_KEYS = {
    "path": "WebSocket and dashboard path, always /",
    "schema": "JSON schema version of the messages (emotrack.realtime.messages.SCHEMA_VERSION)",
    "model": "model id, e.g. mca-musicnn-0.3.0",
    "tls": "1: wss:// and https://, 0: ws:// and http://",
    "token": "required or none (clients add ?token=...; the token is never announced)",
}
"""The ``_emotrack._tcp`` TXT records; the README's discovery table is rendered from it."""


@dataclass(frozen=True, eq=False)  # compared by identity: a run's services are distinct
class Service:
    """One service to announce: its DNS-SD type, instance name, where it is bound and its TXT records."""

    type: str
    instance: str
    host: str
    port: int
    properties: dict[str, str] = field(default_factory=dict)


def wanted(flag: bool | None, hosts: Iterable[str | None]) -> bool:
    """Announce? ``flag`` when given (``--mdns``/``--no-mdns``), else when any service binds a non-loopback host."""
    if flag is not None:
        return flag
    return any(h is not None and not is_loopback(h) for h in hosts)


def server_name() -> str:
    """``<hostname>.local``: the host name announced with the services (and accepted in Host headers)."""
    label = socket.gethostname().split(".")[0].lower()
    label = re.sub(r"[^a-z0-9-]+", "-", label).strip("-")[:63] or "emotrack"
    return f"{label}.local"


def run_services(*, ws: tuple[str, int] | None, tls: bool, token: bool, model: str, schema: int,
                 osc_in: tuple[str, int] | None, osc_prefix: str) -> list[Service]:
    """The services of one run: the stream (``ws`` = bound host and port) and the marker listener, if running."""
    host = server_name().removesuffix(".local")
    services = []
    if ws is not None:
        props = {"path": "/", "schema": str(schema), "model": model, "tls": "1" if tls else "0",
                 "token": "required" if token else "none"}
        services.append(Service(SERVICE_TYPE, _instance(f"emotrack on {host}:{ws[1]}"), ws[0], ws[1], props))
    if osc_in is not None:
        props = {"address": f"{osc_prefix}/marker", "types": "s"}
        services.append(Service(OSC_TYPE, _instance(f"emotrack markers on {host}:{osc_in[1]}"), osc_in[0], osc_in[1],
                                props))
    return services


def _instance(name: str) -> str:
    return name.encode()[:63].decode(errors="ignore")  # a DNS label: 63 bytes at most


def _local_ipv4() -> list[str]:
    import ifaddr  # zeroconf's own dependency

    return sorted({str(ip.ip) for adapter in ifaddr.get_adapters() for ip in adapter.ips if ip.is_IPv4})


def addresses(host: str) -> list[str]:
    """The addresses a client can reach a service bound to ``host`` at (any-address: this machine's LAN IPv4s)."""
    if host in ANY_ADDRESS:
        return [a for a in _local_ipv4() if not is_loopback(a)] or ["127.0.0.1"]
    if host.lower() in ("localhost", "localhost."):
        return ["127.0.0.1"]
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None, socket.AF_INET)})
    except OSError:
        return []


def _warn(text: str) -> None:
    print(f"emotrack: warning: {text}", file=sys.stderr, flush=True)


def _say(text: str) -> None:
    print(f"emotrack: {text}", file=sys.stderr, flush=True)


class Announcer:
    """Registers services with python-zeroconf; probing runs on a thread so the stream starts at once.

    Parameters
    ----------
    services : sequence of Service
        What to announce. Loopback-only services are left out when others serve the LAN.
    interfaces : list of str, optional
        Interface addresses to announce on (default: those of the services; all interfaces for an any-address
        bind; 127.0.0.1 when everything is on loopback).
    warn : callable
        Where a warning line goes (default: stderr).

    Raises
    ------
    OSError, ImportError
        When zeroconf is missing or cannot open its multicast sockets; :func:`announce` turns these into a warning.
    """

    def __init__(self, services: Sequence[Service], *, interfaces: list[str] | None = None,
                 warn: Callable[[str], None] = _warn) -> None:
        from zeroconf import InterfaceChoice, IPVersion, ServiceInfo, Zeroconf

        self.warn = warn
        reach = {s: addresses(s.host) for s in services}
        lan = [s for s in services if any(not is_loopback(a) for a in reach[s])]
        self.services = lan or [s for s in services if reach[s]]
        self.left_out = [s for s in services if s not in self.services]
        if lan:
            reach = {s: [a for a in reach[s] if not is_loopback(a)] for s in lan}
        used = sorted({a for s in self.services for a in reach[s]})
        v6 = any(":" in a for a in used)
        if interfaces is None:
            any_bind = any(s.host in ANY_ADDRESS for s in self.services) or v6
            interfaces = InterfaceChoice.All if any_bind else used or ["127.0.0.1"]  # type: ignore[assignment]
        server = server_name() + "."
        self.infos = [
            ServiceInfo(s.type, f"{s.instance}.{s.type}", port=s.port, properties=s.properties, server=server,
                        parsed_addresses=reach[s])
            for s in self.services
        ]
        self.zeroconf: Any = Zeroconf(interfaces=interfaces, ip_version=IPVersion.All if v6 else IPVersion.V4Only)
        self.registered: list[Any] = []
        self._closed = False
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._register, args=(info,), name="mdns", daemon=True)
                         for info in self.infos]
        for thread in self._threads:
            thread.start()

    def _register(self, info: Any) -> None:
        try:
            self.zeroconf.register_service(info, allow_name_change=True)
        except Exception as exc:  # a closed zeroconf, a timeout, a name we could not claim
            with self._lock:
                if not self._closed:
                    self.warn(f"mDNS: {info.name} not announced: {exc or type(exc).__name__}")
            return
        with self._lock:
            self.registered.append(info)

    def wait(self, timeout: float = 10) -> list[Any]:
        """Block until every registration finished (tests); returns the registered ServiceInfos."""
        for thread in self._threads:
            thread.join(timeout)
        return list(self.registered)

    def close(self) -> None:
        """Unregister (goodbye packets, so browsers drop the entries at once) and close. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for thread in self._threads:
            thread.join(5)
        try:
            self.zeroconf.unregister_all_services()
        except Exception as exc:
            logger.warning("mDNS goodbye failed: %s", exc)
        finally:
            self.zeroconf.close()


def announce(services: Sequence[Service], *, interfaces: list[str] | None = None,
             warn: Callable[[str], None] = _warn, say: Callable[[str], None] = _say) -> Announcer | None:
    """Start announcing ``services``; None (and one warning line) when there is nothing to announce or it fails."""
    if not services:
        return None
    try:
        announcer = Announcer(services, interfaces=interfaces, warn=warn)
    except ImportError:
        warn("LAN discovery needs zeroconf: pip install zeroconf (--no-mdns hides this warning)")
        return None
    except Exception as exc:  # no multicast route, port 5353 refused, ...
        warn(f"LAN discovery (mDNS) is off: {exc or type(exc).__name__} (--no-mdns hides this warning)")
        return None
    where = "on this machine only (loopback)" if all(
        is_loopback(a) for info in announcer.infos for a in info.parsed_addresses()) else "on the LAN"
    names = ", ".join(f"{s.instance!r} ({s.type.removesuffix('.local.')})" for s in announcer.services)
    if not announcer.infos:
        announcer.close()
        warn("mDNS: no address to announce (--ws-host names no address of this machine)")
        return None
    say(f"announced {where} over mDNS: {names}")
    for s in announcer.left_out:
        say(f"not announced (loopback only): {s.type.removesuffix('.local.')} on {s.host}:{s.port}")
    return announcer
