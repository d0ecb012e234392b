"""A minimal Chrome DevTools Protocol driver for real headless Chromium, for tests.

Only the ``websockets`` library is used (no selenium, no playwright)::

    from tests.cdp import Browser

    with Browser() as browser:
        page = browser.new_page("http://127.0.0.1:8765/")
        page.wait_for("document.body.dataset.state === 'live'")
        assert page.evaluate("1 + 1") == 2
        page.screenshot(tmp_path / "page.png")

One reader thread per browser receives every DevTools message: replies wake the waiting command, events are
routed to the page (flattened session) they belong to. Every wait has a timeout, and on exit the browser's
process group is killed and its profile folder removed, so a failing test never leaves Chromium behind.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Browser", "CDPError", "Page", "chromium_path"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_DEVTOOLS_URL = re.compile(r"DevTools listening on (ws://\S+)")


def chromium_path() -> str | None:
    """The Chromium binary to launch: ``$EMOTRACK_CHROMIUM`` or the first of the usual names on ``PATH``."""
    explicit = os.environ.get("EMOTRACK_CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class CDPError(RuntimeError):
    """A DevTools command failed, a JavaScript expression threw, or the browser went away."""


class Browser:
    """A headless Chromium with its own throwaway profile; use it as a context manager.

    Parameters
    ----------
    timeout : float
        Seconds to wait for the browser to start and, by default, for each DevTools command.
    extra_args : list of str
        More command-line switches for Chromium.
    """

    def __init__(self, timeout: float = 30.0, extra_args: list[str] | None = None) -> None:
        self.timeout = timeout
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.profile: str | None = None
        self._ws = None
        self._ids = itertools.count(1)
        self._pending: dict[int, dict] = {}
        self._lock = threading.Lock()
        self._pages: dict[str, Page] = {}
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._closed_reason: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    def __enter__(self) -> Browser:
        binary = chromium_path()
        if binary is None:
            pytest.skip("headless Chromium not found (install Debian's `chromium` or set EMOTRACK_CHROMIUM)")
        try:
            self._launch(binary)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _launch(self, binary: str) -> None:
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="emotrack-chromium-")
        args = [
            binary,
            "--headless=new",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}",
            "--disable-gpu",
            "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-sync",
            "--mute-audio",
            # Tabs the test is not looking at must keep their timers (reconnect backoff) running at full speed.
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
            "--window-size=1280,800",
            *self.extra_args,
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run sandboxed as root
        args.append("about:blank")
        # A process group of its own: the Debian launcher is a shell script, and Chromium forks helpers;
        # killing the group on exit takes them all.
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        found = threading.Event()
        url: list[str] = []

        def drain() -> None:
            # Keeps reading stderr for the browser's whole life: a full pipe would block Chromium.
            assert self.proc is not None and self.proc.stderr is not None
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip()
                self._stderr_tail.append(line)
                m = _DEVTOOLS_URL.search(line)
                if m and not found.is_set():
                    url.append(m.group(1))
                    found.set()
            found.set()  # stderr closed: the browser exited

        threading.Thread(target=drain, name="chromium-stderr", daemon=True).start()
        if not found.wait(self.timeout) or not url:
            raise CDPError(f"Chromium printed no DevTools URL within {self.timeout:.0f} s:\n{self.stderr_tail()}")
        # Entered as a context manager (websockets >= 17.1 warns otherwise); close() leaves it.
        self._ws = connect(url[0], max_size=None, open_timeout=self.timeout, close_timeout=2).__enter__()
        threading.Thread(target=self._read, name="cdp-reader", daemon=True).start()

    def close(self) -> None:
        """Close the connection, kill the browser's process group and remove its profile; safe to call twice."""
        if self._ws is not None:
            with contextlib.suppress(Exception):
                self._ws.close()
        if self.proc is not None and self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # helpers that outlived the main process
            if self.proc.stderr is not None:
                self.proc.stderr.close()
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None

    def stderr_tail(self) -> str:
        """The browser's last lines of stderr, for error messages."""
        return "\n".join(self._stderr_tail)

    # -- protocol ----------------------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            for text in self._ws:
                msg = json.loads(text)
                if "id" in msg:
                    with self._lock:
                        waiter = self._pending.get(msg["id"])
                    if waiter is not None:
                        waiter["reply"] = msg
                        waiter["event"].set()
                else:
                    page = self._pages.get(msg.get("sessionId", ""))
                    if page is not None:
                        page._on_event(msg["method"], msg.get("params", {}))
            self._closed_reason = "DevTools connection closed"
        except Exception as exc:  # noqa: BLE001 - any failure ends the connection; waiters must learn why
            self._closed_reason = f"DevTools connection failed: {exc!r}"
        with self._lock:
            for waiter in self._pending.values():
                waiter["event"].set()

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float | None = None):
        """Send one DevTools command and return its ``result``; raises :class:`CDPError` on error or timeout."""
        if self._ws is None:
            raise CDPError("browser not started")
        if self._closed_reason:
            raise CDPError(f"{method}: {self._closed_reason}\n{self.stderr_tail()}")
        msg_id = next(self._ids)
        waiter = {"event": threading.Event(), "reply": None}
        payload: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            payload["sessionId"] = session
        with self._lock:
            self._pending[msg_id] = waiter
        try:
            self._ws.send(json.dumps(payload))
            limit = self.timeout if timeout is None else timeout
            if not waiter["event"].wait(limit):
                raise CDPError(f"{method}: no reply within {limit:.0f} s")
        finally:
            with self._lock:
                self._pending.pop(msg_id, None)
        reply = waiter["reply"]
        if reply is None:
            raise CDPError(f"{method}: {self._closed_reason}\n{self.stderr_tail()}")
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error'].get('message')} {reply['error'].get('data', '')}".strip())
        return reply.get("result", {})

    def new_page(self, url: str = "about:blank", width: int | None = None, height: int | None = None) -> Page:
        """Open ``url`` in a new tab, wait for its load event, and return the :class:`Page`."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        self._pages[session] = page
        for domain in ("Page", "Runtime", "Log"):
            page.send(f"{domain}.enable")
        if width and height:
            page.set_viewport(width, height)
        if url != "about:blank":
            page.goto(url)
        return page


class Page:
    """One tab, attached as a flattened DevTools session."""

    def __init__(self, browser: Browser, target_id: str, session_id: str) -> None:
        self.browser = browser
        self.target_id = target_id
        self.session_id = session_id
        self.console: list[dict] = []
        """Every console message (``{"type": "log"|"error"|..., "text": ...}``), uncaught exception
        (``type == "exception"``) and browser log entry (``type == "log-entry:<level>"``), in order."""
        self._loads = 0
        self._load_cond = threading.Condition()

    def send(self, method: str, params: dict | None = None, timeout: float | None = None):
        return self.browser.send(method, params, session=self.session_id, timeout=timeout)

    def _on_event(self, method: str, params: dict) -> None:
        if method == "Page.loadEventFired":
            with self._load_cond:
                self._loads += 1
                self._load_cond.notify_all()
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(_remote_text(a) for a in params.get("args", []))
            self.console.append({"type": params.get("type", "log"), "text": text})
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "exception")
            self.console.append({"type": "exception", "text": text})
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.console.append({"type": f"log-entry:{entry.get('level', '')}", "text": entry.get("text", "")})

    @property
    def exceptions(self) -> list[str]:
        """The texts of uncaught JavaScript exceptions (and unhandled rejections) so far."""
        return [c["text"] for c in self.console if c["type"] == "exception"]

    def goto(self, url: str, timeout: float | None = None) -> None:
        """Navigate and wait for the load event."""
        limit = self.browser.timeout if timeout is None else timeout
        with self._load_cond:
            before = self._loads
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"navigating to {url}: {result['errorText']}")
        with self._load_cond:
            if not self._load_cond.wait_for(lambda: self._loads > before, limit):
                raise CDPError(f"{url}: no load event within {limit:.0f} s")

    def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        """Evaluate a JavaScript expression (promises awaited) and return its JSON value.

        Raises :class:`CDPError` with the exception's message when the expression throws.
        """
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True, "userGesture": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "exception")
            raise CDPError(f"JavaScript error in {expression!r}: {text}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 20.0, interval: float = 0.1) -> Any:
        """Poll ``expression`` until truthy and return its value; on timeout AssertionError with the last value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = self.evaluate(expression, timeout=max(1.0, min(10.0, deadline - time.monotonic())))
            except CDPError as exc:
                last = f"<{exc}>"
                if self.browser._closed_reason:
                    raise
            else:
                if last:
                    return last
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {expression!r}; last value: {last!r}")
            time.sleep(interval)

    def set_viewport(self, width: int, height: int, scale: float = 1.0, mobile: bool | None = None) -> None:
        """Emulate a screen of ``width`` x ``height`` CSS pixels (``mobile`` defaults to width < 600)."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": width,
                "height": height,
                "deviceScaleFactor": scale,
                "mobile": width < 600 if mobile is None else mobile,
            },
        )
        # Let the page see the resize and repaint before anyone measures or photographs it.
        # (A timer too: a tab that is not painting runs no animation frames.)
        self.evaluate(
            "new Promise(r => { setTimeout(r, 500, true); requestAnimationFrame(() => requestAnimationFrame(r)); })"
        )

    def click(self, selector: str) -> None:
        """Click the middle of the first element matching ``selector`` with real mouse events."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null; "
            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
            "return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        if box is None:
            raise CDPError(f"no element matches {selector!r}")
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": box[0], "y": box[1]})
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1}
            )

    def type(self, selector: str, text: str) -> None:
        """Focus the element matching ``selector`` and type ``text`` into it as keyboard input would."""
        if not self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
            "if (!e) return false; e.focus(); return document.activeElement === e; })()"
        ):
            raise CDPError(f"no focusable element matches {selector!r}")
        self.send("Input.insertText", {"text": text})

    def press(self, key: str = "Enter") -> None:
        """Press and release one key (``"Enter"``, ``"Escape"``, ``"f"``) in the focused element."""
        codes = {"Enter": ("Enter", 13, "\r"), "Escape": ("Escape", 27, ""), "Tab": ("Tab", 9, "")}
        if key in codes:
            code, vk, text = codes[key]
        elif len(key) == 1:
            code, vk, text = f"Key{key.upper()}", ord(key.upper()), key
        else:
            raise ValueError(f"press() knows Enter, Escape, Tab and single characters, not {key!r}")
        down = {"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk}
        if text:
            down["text"] = text
        self.send("Input.dispatchKeyEvent", down)
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk})

    def screenshot(self, path: str | Path, width: int = 1280, height: int = 800) -> Path:
        """Write a PNG of the page at ``width`` x ``height`` to ``path`` and return the path."""
        self.set_viewport(width, height, mobile=False)
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        """Close the tab; safe to call twice and after the browser has gone."""
        self.browser._pages.pop(self.session_id, None)
        with contextlib.suppress(CDPError):
            self.browser.send("Target.closeTarget", {"targetId": self.target_id}, timeout=5)


def _remote_text(obj: dict) -> str:
    # Console arguments come as RemoteObjects: primitives carry a value, objects a description.
    if "value" in obj:
        value = obj["value"]
        return value if isinstance(value, str) else json.dumps(value)
    return str(obj.get("description", obj.get("type", "")))
