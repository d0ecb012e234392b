"""The DevTools driver in tests/cdp.py against real headless Chromium: a local page, evaluation, errors, screenshots."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest

from tests.cdp import Browser, CDPError

PAGE = b"""<!doctype html><html><head><title>cdp self-test</title></head>
<body><ul id="list"><li>a</li><li>b</li><li>c</li></ul>
<script>console.log("hello", 42); window.later = false; setTimeout(() => { window.later = true; }, 300);</script>
</body></html>"""


@pytest.fixture()
def page_url(tmp_path):
    (tmp_path / "index.html").write_bytes(PAGE)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


def test_cdp_drives_real_chromium(page_url, tmp_path):
    with Browser() as browser:
        page = browser.new_page(page_url)
        assert page.evaluate("1 + 1") == 2
        assert page.evaluate("document.title") == "cdp self-test"
        assert page.evaluate("document.querySelectorAll('#list li').length") == 3
        assert page.evaluate("Promise.resolve({a: [1, 2]})") == {"a": [1, 2]}
        assert page.wait_for("window.later", timeout=5) is True
        with pytest.raises(CDPError, match="boom"):
            page.evaluate("(() => { throw new Error('boom'); })()")
        with pytest.raises(AssertionError, match="last value: False"):
            page.wait_for("false", timeout=0.5)
        page.evaluate("setTimeout(() => { throw new Error('uncaught one'); }, 0); true")
        page.wait_for("true")
        page.evaluate("new Promise(r => setTimeout(r, 100))")
        assert any(c["type"] == "log" and c["text"] == "hello 42" for c in page.console), page.console
        assert any("uncaught one" in text for text in page.exceptions), page.console
        shot = page.screenshot(tmp_path / "shot.png", width=400, height=300)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert page.evaluate("innerWidth") == 400
        second = browser.new_page("data:text/html,<p id=x>two</p>")
        assert second.evaluate("document.getElementById('x').textContent") == "two"
        second.close()
        page.close()
    assert browser.profile is None and browser.proc.poll() is not None
