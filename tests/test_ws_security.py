"""WebSocket security with real clients against a real ``emotrack run``: Host, Origin, token, TLS and caps.

Every test stays on loopback. A non-loopback bind's token requirement is forced on 127.0.0.2 with
``--ws-require-token`` (the same code path: the token is generated and printed at start).
"""

from __future__ import annotations

import asyncio
import http.server
import json
import re
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from emotrack.errors import ConfigError
from emotrack.realtime.access import AccessPolicy, HandshakeRate, bound_names, is_loopback, token_policy


def raw_status(host: str, port: int, headers: dict[str, str], path: str = "/") -> int:
    """Status code of a hand-made WebSocket upgrade request: exactly the headers a hostile page could send."""
    lines = [f"GET {path} HTTP/1.1", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return int(s.recv(4096).split(b" ", 2)[1])


async def first_messages(url: str, n: int = 2, **kwargs) -> list[dict]:
    async with connect(url, open_timeout=10, **kwargs) as ws:
        return [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(n)]


def refused_status(url: str, **kwargs) -> int:
    with pytest.raises(InvalidStatus) as info:
        asyncio.run(first_messages(url, **kwargs))
    return info.value.response.status_code


def test_dns_rebinding_host_and_foreign_origins_are_refused(live):
    run = live()
    port = run.port
    good = {"Host": f"127.0.0.1:{port}"}
    assert raw_status("127.0.0.1", port, good) == 101
    assert raw_status("127.0.0.1", port, {"Host": f"localhost:{port}"}) == 101
    assert raw_status("127.0.0.1", port, {"Host": f"rebind.evil.example:{port}"}) == 421
    assert raw_status("127.0.0.1", port, {**good, "Origin": "http://evil.example"}) == 403
    assert raw_status("127.0.0.1", port, {**good, "Origin": "null"}) == 403
    assert raw_status("127.0.0.1", port, {**good, "Origin": f"http://127.0.0.1:{port}"}) == 101  # its own dashboard
    assert raw_status("127.0.0.1", port, good, path="/some/other/path") == 404
    # the refusals are counted and reported at the end
    run.close()
    assert re.search(r"[34] WebSocket clients refused", "".join(run.stderr)), "".join(run.stderr)


def test_allowed_origin_is_let_in(live):
    run = live("--ws-allow-origin", "null", "--ws-allow-origin", "http://studio.example:8080")
    good = {"Host": f"127.0.0.1:{run.port}"}
    assert raw_status("127.0.0.1", run.port, {**good, "Origin": "null"}) == 101
    assert raw_status("127.0.0.1", run.port, {**good, "Origin": "http://studio.example:8080"}) == 101
    assert raw_status("127.0.0.1", run.port, {**good, "Origin": "http://evil.example"}) == 403


def test_token_is_required_on_a_token_bind(live):
    run = live("--ws-require-token", host="127.0.0.2")
    token = run.token
    assert token and len(token) >= 16, run.url
    base = f"ws://127.0.0.2:{run.port}/"
    assert refused_status(base) == 401
    assert refused_status(base + "?token=wrong" + token[:4]) == 401
    hello, history = asyncio.run(first_messages(base + f"?token={token}"))
    assert hello["type"] == "hello" and history["type"] == "history"
    hello, _ = asyncio.run(first_messages(base, additional_headers={"Authorization": f"Bearer {token}"}))
    assert hello["type"] == "hello"


def test_client_cap(live):
    run = live("--ws-max-clients", "2")

    async def scenario() -> int:
        url = f"ws://127.0.0.1:{run.port}/"
        async with connect(url) as a, connect(url) as b:
            await a.recv()
            await b.recv()
            with pytest.raises(InvalidStatus) as info:
                async with connect(url):
                    pass
            return info.value.response.status_code

    assert asyncio.run(scenario()) == 503


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                        "-out", str(cert)], check=True, capture_output=True, timeout=60)
    except FileNotFoundError:
        pytest.skip("openssl not installed: cannot make a self-signed certificate")
    return cert, key


def test_wss_and_https_with_a_self_signed_certificate(live, self_signed):
    cert, key = self_signed
    run = live("--ws-cert", str(cert), "--ws-key", str(key))
    assert run.url.startswith("https://"), run.url
    client = ssl.create_default_context(cafile=str(cert))
    hello, _ = asyncio.run(first_messages(f"wss://127.0.0.1:{run.port}/", ssl=client))
    assert hello["type"] == "hello"
    import urllib.request

    with urllib.request.urlopen(run.url, context=client, timeout=10) as page:  # the dashboard over https
        assert page.status == 200 and b"<html" in page.read().lower()
    with pytest.raises(ssl.SSLError):  # an untrusting client does not get in
        asyncio.run(first_messages(f"wss://127.0.0.1:{run.port}/", ssl=ssl.create_default_context()))


def test_bad_tls_and_token_options_are_one_line_errors(cli, tmp_path):
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate")
    assert_one_line_error(cli("run", "--ws-cert", str(bad), "--ws-key", str(bad), "--duration", "1", "--no-osc"),
                          "--ws-cert")
    assert_one_line_error(cli("run", "--ws-cert", str(bad), "--duration", "1", "--no-osc"), "--ws-key")
    assert_one_line_error(cli("run", "--ws-cert", str(tmp_path / "missing.pem"), "--ws-key", str(bad)), "no such file")
    assert_one_line_error(cli("run", "--ws-insecure", "--ws-token", "x", "--duration", "1", "--no-osc"), "insecure")


def test_cross_origin_page_in_chromium_cannot_read_the_stream(live, tmp_path):
    """A page from another origin opens a WebSocket to the tracker in real Chromium: refused. The tracker's own
    page, in the same browser, reads it (the control that shows the browser could connect at all)."""
    from cdp import Browser

    run = live()
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "index.html").write_text(
        "<!doctype html><html><body><script>\n"
        "window.got = []; window.wsClosed = false; window.opened = false;\n"
        f"const ws = new WebSocket('ws://127.0.0.1:{run.port}/');\n"
        "ws.onopen = () => { window.opened = true; };\n"
        "ws.onmessage = (e) => window.got.push(e.data);\n"
        "ws.onclose = () => { window.wsClosed = true; };\n"
        "</script></body></html>\n"
    )
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(evil))  # noqa: E731
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as site:
        threading.Thread(target=site.serve_forever, daemon=True).start()
        with Browser() as browser:
            page = browser.new_page(f"http://127.0.0.1:{site.server_address[1]}/index.html")
            page.wait_for("window.wsClosed === true", timeout=20)
            assert page.evaluate("window.opened") is False
            assert page.evaluate("window.got.length") == 0
            own = browser.new_page(f"http://127.0.0.1:{run.port}/")
            own.evaluate(f"window.got = []; const w = new WebSocket('ws://127.0.0.1:{run.port}/');"
                         "w.onmessage = (e) => window.got.push(JSON.parse(e.data).type); 0")
            own.wait_for("window.got.includes('emotion')", timeout=20)
        site.shutdown()


def test_policy_units():
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")
    assert token_policy("127.0.0.1", None) is None
    assert len(token_policy("0.0.0.0", None)) >= 16  # a LAN bind always gets a token
    assert token_policy("192.168.1.20", "mine") == "mine"
    assert token_policy("0.0.0.0", None, insecure=True) is None
    with pytest.raises(ConfigError):
        token_policy("0.0.0.0", "x", insecure=True)
    with pytest.raises(ConfigError):
        token_policy("0.0.0.0", "  ")
    names = bound_names("0.0.0.0")
    assert "localhost" in names and socket.gethostname().lower() in names
    policy = AccessPolicy(hosts=bound_names("127.0.0.1"), token="t")
    assert policy.check_host("[::1]:8765") is None and policy.check_host("evil:8765")
    assert policy.check_token("/?token=t", None) is None and policy.check_token("/", "Bearer t") is None
    assert policy.check_token("/?token=u", None) == "wrong token"
    rate = HandshakeRate(5)
    assert sum(rate.allow() for _ in range(50)) == 10  # the burst, then nothing until time passes
