"""The live dashboard's files, served by the WebSocket server itself on the same host and port.

One port for the page and its stream means one address to give a tablet on the room's LAN, and the page's
origin is the server's own, which the Origin check (:mod:`emotrack.realtime.access`) accepts without
configuration. Everything ships in the package: clinics and galleries are often offline.
"""

from __future__ import annotations

from importlib.resources import files

__all__ = ["PAGES", "SECURITY_HEADERS", "page"]

PAGES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}
"""URL path to (file in ``emotrack/assets/dashboard``, content type)."""

SECURITY_HEADERS = {
    # Scripts only from the page's own files; the stream only from its own host; never inside another site's frame.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the page's URL carries the token
    "Cache-Control": "no-cache",
}


def page(path: str) -> tuple[bytes, str] | None:
    """Body and content type of the dashboard file at URL ``path`` (query ignored), or None if there is none."""
    entry = PAGES.get(path.partition("?")[0])
    if entry is None:
        return None
    name, content_type = entry
    resource = files("emotrack.assets").joinpath("dashboard", name)
    if not resource.is_file():
        return None
    return resource.read_bytes(), content_type
