"""``emotrack annotate``: a loopback HTTP page that plays a song while the listener moves a point on the V-A plane.

The stdlib ``http.server`` suffices: one listener, one page, one POST, no push. The page
(``emotrack/assets/annotate/``, no CDN) samples the point at 2 Hz of the audio's ``currentTime`` and posts the
curve as JSON; the server checks it with the same rules as ``emotrack personalize`` and writes the CSV, so a
bad curve is refused in the page, not later. Only loopback is bound and only a ``localhost``/``127.0.0.1``
Host header is answered (a web page elsewhere cannot rebind a name onto this port and read the song).
"""

from __future__ import annotations

import json
import mimetypes
import re
import threading
import webbrowser
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from emotrack.assets import ASSETS
from emotrack.errors import EmotrackError, PortInUseError
from emotrack.personal.annotations import Curve, write_curve

__all__ = ["AnnotationServer", "serve_annotation"]

PAGE_DIR = ASSETS / "annotate"
PAGE_FILES = {"/": "index.html", "/index.html": "index.html", "/annotate.js": "annotate.js",
              "/annotate.css": "annotate.css"}
MAX_POST = 4 << 20
"""Largest curve accepted (4 MiB of JSON: hours at 2 Hz)."""
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class _Handler(BaseHTTPRequestHandler):
    server: AnnotationServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature; keep the terminal quiet
        pass

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        if host in ("localhost", "127.0.0.1", "::1"):
            return True
        self._send(HTTPStatus.FORBIDDEN, b"forbidden host\n", "text/plain")
        return False

    def _send(self, status: HTTPStatus, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, obj: dict) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib name
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        if not self._host_ok():
            return
        path = self.path.split("?", 1)[0]
        if path in PAGE_FILES:
            name = PAGE_FILES[path]
            ctype = {"html": "text/html", "js": "text/javascript", "css": "text/css"}[name.rsplit(".", 1)[1]]
            self._send(HTTPStatus.OK, (PAGE_DIR / name).read_bytes(), ctype + "; charset=utf-8")
        elif path == "/info":
            self._json(HTTPStatus.OK, {"song": self.server.audio.name, "out": str(self.server.out),
                                       "saved": self.server.saved})
        elif path == "/audio":
            self._audio()
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def _audio(self) -> None:
        """The song, with byte ranges (the audio element seeks with them)."""
        data = self.server.audio_bytes
        ctype = mimetypes.guess_type(self.server.audio.name)[0] or "application/octet-stream"
        match = _RANGE.match(self.headers.get("Range", "").strip())
        if not match or not (match[1] or match[2]):
            self._send(HTTPStatus.OK, data, ctype, {"Accept-Ranges": "bytes"})
            return
        size = len(data)
        if match[1]:
            start, end = int(match[1]), min(int(match[2]) if match[2] else size - 1, size - 1)
        else:
            start, end = max(0, size - int(match[2])), size - 1
        if start > end or start >= size:
            self._send(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", ctype, {"Content-Range": f"bytes */{size}"})
            return
        self._send(HTTPStatus.PARTIAL_CONTENT, data[start : end + 1], ctype,
                   {"Accept-Ranges": "bytes", "Content-Range": f"bytes {start}-{end}/{size}"})

    def do_POST(self) -> None:  # noqa: N802
        if not self._host_ok():
            return
        if self.path.split("?", 1)[0] != "/curve":
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        if "application/json" not in (self.headers.get("Content-Type") or ""):
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send the curve as application/json"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_POST:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"curve must be 1 byte to {MAX_POST} bytes"})
            return
        try:
            body = json.loads(self.rfile.read(length))
            times = np.asarray(body["time_s"], np.float64)
            va = np.stack([np.asarray(body["valence"], np.float64), np.asarray(body["arousal"], np.float64)], 1)
            curve = Curve(times, va)
            curve.check("curve", self.server.duration_s)
            write_curve(self.server.out, times, va)
        except EmotrackError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        except (ValueError, KeyError, TypeError) as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"malformed curve: {exc}"})
            return
        self.server.saved += 1
        self._json(HTTPStatus.OK, {"ok": True, "path": str(self.server.out), "rows": len(times)})
        self.server.on_saved()


class AnnotationServer(ThreadingHTTPServer):
    """The page, the song and the curve endpoint on ``127.0.0.1:port`` (``port=0``: any free one)."""

    daemon_threads = True

    def __init__(self, audio: str | Path, out: str | Path, port: int = 0, once: bool = False) -> None:
        from emotrack.audio import audio_seconds

        self.audio = Path(audio)
        self.out = Path(out)
        self.audio_bytes = self.audio.read_bytes()
        # 0 for a format the browser plays but libsndfile does not: then times are not checked against it
        self.duration_s: float | None = audio_seconds(self.audio) or None
        self.saved = 0
        self.once = once
        try:
            super().__init__(("127.0.0.1", port), partial(_Handler))
        except OSError as exc:
            raise PortInUseError(f"cannot serve the annotation page on 127.0.0.1:{port}: {exc.strerror}") from None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def on_saved(self) -> None:
        if self.once:
            threading.Thread(target=self.shutdown, daemon=True).start()


def serve_annotation(audio: str | Path, out: str | Path, port: int = 8766, once: bool = False,
                     open_browser: bool = True) -> None:
    """Serve until Ctrl-C (or, with ``once``, until the first curve is saved)."""
    server = AnnotationServer(audio, out, port, once)
    print(f"annotate {Path(audio).name}: open {server.url} (Ctrl-C to stop); the curve goes to {out}", flush=True)
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    if server.saved:
        print(f"saved {out}")
