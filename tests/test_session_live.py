"""``emotrack run --session``: a real run on real audio, killed and stopped, with markers from every route.

The store is read back with the same reader ``emotrack report`` uses; hop counts are compared with what a real
WebSocket client saw, so "nothing lost" is checked against the stream, not against the store itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import REPO, assert_one_line_error, free_port
from pythonosc.udp_client import SimpleUDPClient
from websockets.asyncio.client import connect

from emotrack.session import list_sessions, load_session


async def watch(url: str, seconds: float) -> list[dict]:
    """Every message one client gets in ``seconds``."""
    messages: list[dict] = []
    start = time.monotonic()
    async with connect(url) as ws:
        while time.monotonic() - start < seconds:
            with contextlib.suppress(TimeoutError):
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), 0.2)))
    return messages


def emotion_seqs(messages: list[dict]) -> list[int]:
    return [m["seq"] for m in messages if m["type"] == "emotion"]


def summary_hops(stderr: str) -> int:
    line = next(line for line in stderr.splitlines() if " hops, " in line and "samples dropped" in line)
    return int(line.split("emotrack: ")[1].split()[0])


def test_sigkill_at_a_random_moment_loses_at_most_a_second(live, tmp_path):
    seed = random.randrange(1 << 30)
    wait = random.Random(seed).uniform(3.0, 9.0)
    run = live("--session", str(tmp_path / "s"))
    messages = asyncio.run(watch(run.url.replace("http", "ws"), wait))
    run.proc.kill()
    run.proc.wait(10)
    seen = emotion_seqs(messages)
    assert seen, f"seed {seed}: no hops seen in {wait:.1f} s"
    db = tmp_path / "s" / "sessions.sqlite"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    session = load_session(tmp_path / "s")
    stored = list(session.hops.seq)
    assert stored == list(range(len(stored))), f"seed {seed}: gaps in the stored hops"
    # every hop up to 1 s (2 hops) before the kill is stored; the client itself sees hops a moment late
    assert len(stored) >= seen[-1] + 1 - 2, f"seed {seed}: kill after {wait:.1f} s, saw {seen[-1] + 1}, " \
                                            f"stored {len(stored)}"
    assert session.info.ended is None  # killed: no end time, and the reader says so
    assert session.info.state != "ended"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_close_the_session_with_every_hop(live, tmp_path, sig):
    run = live("--session", str(tmp_path / "s"))
    asyncio.run(watch(run.url.replace("http", "ws"), 3.0))
    run.proc.send_signal(sig)
    assert run.wait(20) in (0, 130)
    time.sleep(0.2)
    hops = summary_hops("".join(run.stderr))
    session = load_session(tmp_path / "s")
    assert session.info.ended is not None and session.info.ended >= session.info.started
    assert len(session.hops.seq) == hops > 0


def test_a_second_run_never_overwrites_and_append_continues(cli, example_audio, tmp_path):
    folder = tmp_path / "s"
    base = ["run", "--file", str(example_audio), "--fast", "--no-osc", "--no-osc-in", "--ws-port", "0", "--quiet",
            "--duration", "2", "--session", str(folder)]
    assert cli(*base, "--client", "C-12").returncode == 0
    first = load_session(folder)
    assert cli(*base).returncode == 0
    infos = list_sessions(folder)
    assert [i.id for i in infos] == [first.info.id, first.info.id + 1]
    again = load_session(folder, first.info.id)
    assert len(again.hops.seq) == len(first.hops.seq) and again.info.client == "C-12"
    assert cli(*base, "--append").returncode == 0
    appended = load_session(folder, first.info.id + 1)
    seq, t = list(appended.hops.seq), list(appended.hops.stream_time)
    assert seq == list(range(len(seq))) and all(b > a for a, b in zip(t, t[1:], strict=False))
    assert len(list_sessions(folder)) == 2


def test_markers_from_websocket_osc_and_the_terminal_arrive_with_their_times(example_audio, tmp_path):
    """The dashboard route is tested in test_dashboard.py with headless Chromium."""
    ws_port, osc_port = free_port(), free_port(socket.SOCK_DGRAM)
    folder = tmp_path / "s"
    main, child = pty.openpty()  # the terminal: a real pty on the child's stdin
    proc = subprocess.Popen(
        [sys.executable, "-m", "emotrack", "run", "--file", str(example_audio), "--loop", "--no-osc", "--quiet",
         "--ws-port", str(ws_port), "--osc-in", f"127.0.0.1:{osc_port}", "--session", str(folder)],
        stdin=child, stdout=subprocess.DEVNULL, cwd=REPO, stderr=subprocess.PIPE, text=True,
    )
    os.close(child)
    try:
        sent: dict[str, tuple[float, float]] = {}

        async def scenario() -> list[dict]:
            from conftest import ws_connect

            async with await ws_connect(ws_port) as ws:
                messages: list[dict] = []

                async def until(n_hops: int) -> float:
                    while len(emotion_seqs(messages)) < n_hops:
                        messages.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
                    return max(m["stream_time"] for m in messages if m["type"] == "emotion")

                latest = await until(4)
                sent["websocket"] = (time.time(), latest)
                await ws.send(json.dumps({"type": "marker", "label": "client started singing"}))
                latest = await until(8)
                sent["osc"] = (time.time(), latest)
                SimpleUDPClient("127.0.0.1", osc_port).send_message("/emotrack/marker", "track 3")
                latest = await until(12)
                sent["terminal"] = (time.time(), latest)
                os.write(main, b"calm-down exercise\n")
                await until(16)
                return messages

        messages = asyncio.run(scenario())
        echoed = [m for m in messages if m["type"] == "marker"]
        assert {m["source"] for m in echoed} == {"websocket", "osc", "terminal"}, echoed
    finally:
        proc.terminate()
        proc.wait(20)
        os.close(main)
    markers = {m.source: m for m in load_session(folder).markers}
    labels = {"websocket": "client started singing", "osc": "track 3", "terminal": "calm-down exercise"}
    for source, label in labels.items():
        marker = markers[source]
        wall, stream = sent[source]
        assert marker.label == label
        assert abs(marker.wall_time - wall) < 1.5, (source, marker.wall_time - wall)
        assert -0.01 <= marker.stream_time - stream <= 1.5, (source, marker.stream_time, stream)


def test_unwritable_session_folder_is_a_one_line_error_before_anything_starts(cli, example_audio, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    result = cli("run", "--file", str(example_audio), "--no-osc", "--no-ws", "--quiet", "--duration", "1",
                 "--session", str(a_file / "sub"))
    assert_one_line_error(result, "--session")
    assert_one_line_error(cli("run", "--no-osc", "--append", "--duration", "1"), "--session")


@pytest.fixture
def small_disk(tmpfs):
    """A 96 KiB tmpfs: room for the store's schema and some hops, then full."""
    return tmpfs("full", "size=96k")


def test_full_disk_during_a_session_is_counted_and_tracking_goes_on(example_audio, small_disk, cli):
    result = cli("run", "--file", str(example_audio), "--fast", "--loop", "--duration", "20", "--no-osc",
                 "--no-osc-in", "--ws-port", "0", "--quiet", "--session", str(small_disk / "s"), timeout=180)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    hops = summary_hops(result.stderr)
    line = next(line for line in result.stderr.splitlines() if line.startswith("emotrack: session"))
    found = re.search(r": (\d+) hops and \d+ markers stored, (\d+) lost \(write errors\)$", line)
    assert found, result.stderr
    stored, lost = map(int, found.groups())
    assert stored + lost == hops, line  # every hop is either stored or counted as lost
    assert lost >= 100 and lost > 2 * stored, line  # tracking went on long after the disk filled (by hops, not seconds)


def test_a_marker_from_the_dashboard_reaches_the_store(live, tmp_path):
    """The fourth route: typed into the dashboard in headless Chromium, stored with its times, echoed back."""
    from cdp import Browser

    run = live("--session", str(tmp_path / "s"))
    with Browser() as browser:
        page = browser.new_page(run.url)
        page.wait_for("window.emotrack && window.emotrack.hops >= 4", timeout=60)
        latest = page.evaluate("window.emotrack.latest.stream_time")
        sent = time.time()
        page.type("#marker-label", "calm-down exercise")
        page.click("#marker-send")
        page.wait_for("window.emotrack.markers.some(m => m.label === 'calm-down exercise')", timeout=20)
    run.close()
    (marker,) = load_session(tmp_path / "s").markers
    assert (marker.label, marker.source) == ("calm-down exercise", "dashboard")
    assert abs(marker.wall_time - sent) < 1.5
    assert -0.01 <= marker.stream_time - latest <= 1.5


def test_keep_audio_writes_the_session_audio_as_flac(cli, example_audio, tmp_path):
    import soundfile as sf

    result = cli("run", "--file", str(example_audio), "--fast", "--no-osc", "--no-osc-in", "--ws-port", "0",
                 "--quiet", "--session", str(tmp_path / "s"), "--keep-audio")
    assert result.returncode == 0, result.stderr
    (flac,) = (tmp_path / "s").glob("session-1-*.flac")
    info, source = sf.info(flac), sf.info(example_audio)
    assert info.format == "FLAC" and info.samplerate == source.samplerate
    assert abs(info.duration - source.duration) < 0.1
    assert not list(tmp_path.glob("s/*.flac"))[1:]  # one file, and none without --keep-audio:
    assert cli("run", "--file", str(example_audio), "--fast", "--no-osc", "--no-osc-in", "--ws-port", "0", "--quiet",
               "--duration", "1", "--session", str(tmp_path / "t")).returncode == 0
    assert not list((tmp_path / "t").glob("*.flac"))
