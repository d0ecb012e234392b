"""The live dashboard in real headless Chromium against a real ``emotrack run`` on the bundled example (issue 16 §3).

One test drives the whole story, as a therapist's tablet would see it: the page served by ``run`` goes live, its
plane and timelines grow, a marker typed into the page comes back as the server's echo, the page fits a phone,
the server is stopped (values go blank, never stale) and started again on the same port (the page reconnects by
itself and starts the run afresh: no accumulated hop count, never a negative missed count).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emotrack.assets import EXAMPLE_AUDIO
from emotrack.realtime.messages import QUADRANT_NAMES
from tests.cdp import Browser, Page
from tests.conftest import REPO, free_port

pytestmark = pytest.mark.slow

HOP_S = 0.5
SCREENSHOT = REPO / "docs" / "img" / "dashboard.png"
# What the page shows, in one evaluation: every poll below checks the invariants on it.
SNAPSHOT = """JSON.stringify({
  state: document.body.dataset.state,
  runId: window.emotrack.runId,
  hops: window.emotrack.hops,
  hopsText: document.getElementById('hops').textContent,
  timeline: window.emotrack.timeline.length,
  trail: window.emotrack.trail.length,
  missed: window.emotrack.missed,
  missedText: document.getElementById('missed').textContent,
  valence: document.getElementById('valence-value').textContent,
  arousal: document.getElementById('arousal-value').textContent,
  quadrant: document.getElementById('quadrant').textContent,
  confidence: document.getElementById('confidence').textContent,
  latency: document.getElementById('latency').textContent,
  dropped: document.getElementById('dropped').textContent,
  status: document.getElementById('status').textContent,
})"""


def start_server(port: int, log: Path, extra: list[str] | None = None) -> subprocess.Popen:
    """``emotrack run`` on the bundled example (looped), once it listens on ``port``."""
    cmd = [sys.executable, "-m", "emotrack", "run", "--file", str(EXAMPLE_AUDIO), "--loop", "--no-osc",
           "--ws-port", str(port), "--quiet", *(extra or [])]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"emotrack run exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    stop_server(proc)
    raise AssertionError(f"emotrack run did not listen on {port} within 40 s:\n{log.read_text()}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def snapshot(page: Page) -> dict:
    snap = json.loads(page.evaluate(SNAPSHOT))
    # Invariants on every look: the counters agree with the page's state and are never negative.
    assert snap["missed"] >= 0 and int(snap["missedText"]) == snap["missed"], snap
    assert int(snap["hopsText"]) == snap["hops"] == snap["timeline"], snap
    assert 0 <= snap["trail"] <= snap["timeline"], snap
    return snap


def wait_snapshot(page: Page, ok, what: str, timeout: float = 20.0) -> dict:
    """Poll the page until ``ok(snapshot)``, checking the invariants on every poll."""
    deadline = time.monotonic() + timeout
    while True:
        snap = snapshot(page)
        if ok(snap):
            return snap
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; page: {snap}")
        time.sleep(0.2)


def test_dashboard_live_marker_restart(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path / "run.log"
    names = set(QUADRANT_NAMES.values())
    server = start_server(port, log)
    try:
        with Browser() as browser:
            page = browser.new_page(url, width=1280, height=800)

            # Live: the state, the readouts, and the plane and the timelines growing hop by hop.
            first = wait_snapshot(page, lambda s: s["state"] == "live" and s["hops"] >= 3, "the first hops")
            assert first["runId"], first
            grown = wait_snapshot(page, lambda s: s["hops"] >= first["hops"] + 4, "more hops")
            assert grown["timeline"] > first["timeline"] and grown["trail"] > first["trail"], (first, grown)
            assert grown["quadrant"] in names, grown
            assert grown["valence"] != "—" and grown["arousal"] != "—" and grown["latency"].endswith(" ms"), grown
            assert grown["confidence"].endswith("%") and grown["dropped"] != "—", grown

            # A marker typed into the page and sent with the button comes back as the server's echo.
            page.type("#marker-label", "client started singing")
            page.click("#marker-send")
            marker = page.wait_for(
                "window.emotrack.markers.find(m => m.label === 'client started singing')", timeout=10
            )
            assert marker["source"] == "dashboard" and marker["stream_time"] > 0 and "id" in marker, marker
            assert page.evaluate("document.getElementById('marker-label').value") == ""
            assert "client started singing" in page.evaluate("document.getElementById('markers').textContent")
            # Enter in the text field sends too.
            page.type("#marker-label", "calm-down exercise")
            page.press("Enter")
            page.wait_for("window.emotrack.markers.some(m => m.label === 'calm-down exercise')", timeout=10)

            # A picture of the live page: into the README's folder on request, into tmp_path always.
            if os.environ.get("EMOTRACK_SCREENSHOT") == "1":
                wait_snapshot(page, lambda s: s["hops"] >= 44, "a fuller timeline for the README picture", 40)
                page.type("#marker-label", "track 2")
                page.press("Enter")
                wait_snapshot(page, lambda s: s["hops"] >= 76, "a fuller timeline for the README picture", 30)
                page.evaluate("document.activeElement.blur(); true")
                page.screenshot(SCREENSHOT, width=1280, height=800)
            shot = page.screenshot(tmp_path / "dashboard.png", width=1280, height=800)
            assert shot.stat().st_size > 10_000

            # A phone: nothing wider than the screen.
            page.set_viewport(360, 740)
            widths = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
            assert widths[1] == 360 and widths[0] <= widths[1], widths
            page.screenshot(tmp_path / "dashboard-phone.png", width=360, height=740)
            page.set_viewport(1280, 800)

            # Kiosk mode hides the controls.
            kiosk = browser.new_page(url + "?kiosk=1", width=1280, height=800)
            kiosk.wait_for("document.body.dataset.state === 'live'", timeout=10)
            assert kiosk.evaluate("getComputedStyle(document.getElementById('marker-form')).display") == "none"
            assert kiosk.exceptions == [], kiosk.console
            kiosk.close()

            # Server gone: the page leaves "live" and shows no stale values.
            before = snapshot(page)
            stop_server(server)
            gone = wait_snapshot(page, lambda s: s["state"] != "live", "the page to notice the server is gone", 10)
            assert gone["state"] in ("reconnecting", "refused"), gone
            assert gone["valence"] == "—" and gone["arousal"] == "—" and gone["quadrant"] == "—", gone
            assert gone["confidence"] == "—" and gone["latency"] == "—", gone
            assert page.evaluate("document.getElementById('status').textContent").startswith("reconnecting")

            # A new server on the same port: the page reconnects by itself and starts the run afresh.
            restarted_at = time.monotonic()
            server = start_server(port, log)
            back = wait_snapshot(
                page,
                lambda s: s["state"] == "live" and s["runId"] != before["runId"] and s["hops"] >= 1,
                "the page to reconnect to the new server",
                40,
            )
            # Not accumulated: no more hops than the new server can have made since it started.
            assert back["hops"] <= (time.monotonic() - restarted_at) / HOP_S + 2, (before, back)
            assert back["missed"] == 0, back
            again = wait_snapshot(page, lambda s: s["hops"] >= back["hops"] + 3, "hops of the new run")
            assert again["quadrant"] in names and again["valence"] != "—", again
            assert page.evaluate("window.emotrack.markers.length") == 0, "markers of the old run kept"

            assert page.exceptions == [], page.console
            assert not [c for c in page.console if c["type"] == "error"], page.console
            page.close()
    finally:
        stop_server(server)


def test_dashboard_token_and_session(tmp_path):
    """The page passes its own ?token= to the stream; without it the handshake is refused and the page says so."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path / "run.log"
    extra = ["--ws-token", "s3cret-token", "--ws-require-token", "--session", str(tmp_path / "sessions")]
    server = start_server(port, log, extra)
    try:
        with Browser() as browser:
            page = browser.new_page(url + "?token=s3cret-token")
            # Status "live" alone (no "waiting for audio"): a live hop is shown, not only the history sent on connect.
            snap = wait_snapshot(page, lambda s: s["status"] == "live" and s["hops"] >= 2, "live with the token", 30)
            assert snap["quadrant"] in set(QUADRANT_NAMES.values()), snap
            assert page.evaluate("document.getElementById('session').textContent").startswith("#"), snap

            refused = browser.new_page(url)  # the page itself is public; its stream is not
            snap = wait_snapshot(refused, lambda s: s["state"] == "refused", "the refused state", 25)
            assert "token" in snap["status"] and snap["hops"] == 0 and snap["valence"] == "—", snap
            assert refused.exceptions == [] and page.exceptions == [], (refused.console, page.console)
    finally:
        stop_server(server)
