"""Who may open the WebSocket stream: Host and Origin checks, a bearer token, and caps on clients and handshakes.

The stream can be read by any program that reaches the port, so on a venue LAN the server must tell apart the
installation's own clients from everything else:

- **Host header** against the names the server is bound to: a web page on a rebinding domain
  (``Host: rebind.evil.example``) resolving to this machine is refused (DNS rebinding).
- **Origin header**: browsers send it, native clients (TouchDesigner, Max, Python) do not. Accepted: no Origin,
  the dashboard's own origin (``http(s)://`` plus the checked Host) and origins added with ``--ws-allow-origin``;
  any other web page is refused (cross-site WebSocket hijacking).
- **Token**: a shared secret given as ``?token=`` or ``Authorization: Bearer``; required whenever the server
  binds a non-loopback address (:func:`token_policy`).
- **Caps**: at most ``max_clients`` connections and ``handshakes_per_s`` new handshakes per second (burst of
  twice that), so a flood of connections cannot exhaust the process.

What this does not protect: traffic on the wire without TLS (use ``--ws-cert/--ws-key``), a token that leaks
with a shared URL, or a machine on the LAN that has the token.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import secrets
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from emotrack.errors import ConfigError

__all__ = ["AccessPolicy", "HandshakeRate", "bound_names", "is_loopback", "new_token", "split_host", "token_policy"]

ANY_ADDRESS = {"", "0.0.0.0", "::"}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): only this machine can connect."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A random URL-safe token (128 bits), printed at start for the user to hand to their clients."""
    return secrets.token_urlsafe(16)


def token_policy(host: str, token: str | None, *, require: bool = False, insecure: bool = False) -> str | None:
    """The token the server will require, or None for none.

    A non-loopback bind (``0.0.0.0``, a LAN address) always gets one: the given ``token``, or a new one.
    ``require`` does the same on loopback (tests, a shared machine); ``insecure`` turns the requirement off.

    Raises
    ------
    ConfigError
        For ``insecure`` together with a token or ``require``, or an empty token.
    """
    if token is not None and not token.strip():
        raise ConfigError("--ws-token must not be empty")
    if insecure:
        if token is not None or require:
            raise ConfigError("--ws-insecure turns the token off; it cannot go with --ws-token or --ws-require-token")
        return None
    if token is not None:
        return token
    if require or not is_loopback(host):
        return new_token()
    return None


def _local_addresses() -> set[str]:
    """Addresses of this machine that a LAN client may use in its Host header."""
    names: set[str] = set()
    hostname = socket.gethostname()
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(hostname, None):
            names.add(str(info[4][0]))
    for probe, family in (("10.255.255.255", socket.AF_INET), ("fd00::1", socket.AF_INET6)):
        # The address the default route would use; connect() on UDP sends nothing.
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((probe, 9))
            names.add(s.getsockname()[0])
    return names


def bound_names(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host-header names accepted for a server bound to ``host`` (lower case, no port, no brackets).

    Always the bound address itself and ``extra``; for a loopback bind also ``localhost``; for an any-address
    bind (``0.0.0.0``, ``::``) every local address plus the host name and ``<hostname>.local`` (mDNS).
    """
    names = {"localhost", "127.0.0.1", "::1"} if is_loopback(host) or host in ANY_ADDRESS else set()
    if host not in ANY_ADDRESS:
        names.add(host)
    else:
        hostname = socket.gethostname().lower()
        names |= {hostname, f"{hostname}.local"} | _local_addresses()
    names |= set(extra)
    return frozenset(n.lower().strip("[]") for n in names)


def split_host(value: str) -> str:
    """The host part of a Host header (``name:port``, ``[v6]:port``), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        return value.partition(":")[0]
    return value


class HandshakeRate:
    """A token bucket: at most ``rate`` handshakes per second on average, bursts of ``2 * rate``."""

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self.capacity = 2.0 * self.rate
        self._tokens = self.capacity
        self._last = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass
class AccessPolicy:
    """The server's admission rules; :meth:`check` says why a request is refused, or None to let it in.

    Attributes
    ----------
    hosts : frozenset of str or None
        Accepted Host-header names (see :func:`bound_names`); None accepts any.
    origins : frozenset of str
        Web origins accepted besides the dashboard's own, e.g. ``"null"`` for a page opened from a file.
    token : str or None
        The required token; None requires none.
    max_clients : int
        Most connections at once.
    handshakes_per_s : float
        Average new handshakes per second.
    """

    hosts: frozenset[str] | None = None
    origins: frozenset[str] = frozenset()
    token: str | None = None
    max_clients: int = 64
    handshakes_per_s: float = 20.0
    _rate: HandshakeRate = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_clients < 1:
            raise ConfigError(f"--ws-max-clients must be at least 1, got {self.max_clients}")
        if not self.handshakes_per_s > 0:
            raise ConfigError(f"handshakes per second must be positive, got {self.handshakes_per_s}")
        self._rate = HandshakeRate(self.handshakes_per_s)

    def check_host(self, host_header: str | None) -> str | None:
        if self.hosts is None:
            return None
        if not host_header:
            return "no Host header"
        if split_host(host_header) not in self.hosts:
            return f"Host {host_header!r} is not a name of this server"
        return None

    def check_origin(self, origin: str | None, host_header: str | None, scheme: str) -> str | None:
        if origin is None or origin in self.origins:
            return None
        if host_header and origin.lower() == f"{scheme}://{host_header.strip().lower()}":
            return None  # the dashboard this server served (its Host was checked first)
        return f"Origin {origin!r} is not allowed (--ws-allow-origin adds one)"

    def check_token(self, path: str, authorization: str | None) -> str | None:
        if self.token is None:
            return None
        given = parse_qs(urlsplit(path).query).get("token", [None])[0]
        if given is None and authorization and authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        if given is None:
            return "no token"
        if not hmac.compare_digest(given.encode(errors="surrogateescape"), self.token.encode()):
            return "wrong token"
        return None

    def admit(self, clients: int) -> tuple[int, str] | None:
        """Capacity checks before the request's content: ``(HTTP status, reason)`` or None."""
        if clients >= self.max_clients:
            return 503, f"{clients} clients connected, the most allowed (--ws-max-clients)"
        if not self._rate.allow():
            return 429, f"more than {self.handshakes_per_s:g} handshakes per second"
        return None
