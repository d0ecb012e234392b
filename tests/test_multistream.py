"""Many streams in one process: every channel of an input (``--per-channel``) and network audio (``--url``).

Real audio throughout: four different excerpts of the bundled recording, one per channel, through a file and
through a real 4-channel PulseAudio null sink; a network stream served by a real HTTP server that is killed and
restarted; OSC read back by liblo's ``oscdump``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import DATA_ROOT, REPO, free_port, ws_connect

from emotrack.csvout import read_csv
from emotrack.errors import ConfigError
from emotrack.realtime.multistream import parse_channels

STARTS = (9.0, 24.0, 39.0, 50.0)
"""Seconds into the bundled recording of the four passages used when ../shared/data is absent."""


def _excerpts(seconds: float = 15.0, sr: int = 44100) -> tuple[list[np.ndarray], str]:
    """Four different real passages: a 4Q clip of each quadrant when the shared data is there (four songs of four
    moods), else four passages of the bundled recording."""
    import soxr

    from emotrack.assets import EXAMPLE_AUDIO

    fourq = DATA_ROOT / "4q"
    if all((fourq / f"Q{q}").is_dir() for q in range(1, 5)):
        parts = []
        for q in range(1, 5):
            clip = sorted((fourq / f"Q{q}").glob("*.mp3"))[0]
            audio, rate = sf.read(clip, dtype="float32", always_2d=True)
            mono = soxr.resample(audio.mean(axis=1), rate, sr).astype(np.float32)
            parts.append(mono[int(5 * sr): int((5 + seconds) * sr)])
        return parts, "4q"
    audio, rate = sf.read(EXAMPLE_AUDIO, dtype="float32")
    mono = audio.mean(axis=1)
    return [mono[int(s * rate): int((s + seconds) * rate)] for s in STARTS], "example"


@pytest.fixture(scope="module")
def four_channels(tmp_path_factory) -> tuple[Path, list[Path], str]:
    """A 4-channel float WAV, one passage per channel, each channel also as its own mono file, and their origin."""
    folder = tmp_path_factory.mktemp("four")
    parts, origin = _excerpts()
    n = min(map(len, parts))
    sf.write(folder / "four.wav", np.stack([p[:n] for p in parts], axis=1), 44100, subtype="FLOAT")
    singles = []
    for k, part in enumerate(parts):
        sf.write(folder / f"ch{k + 1}.wav", part[:n], 44100, subtype="FLOAT")
        singles.append(folder / f"ch{k + 1}.wav")
    return folder / "four.wav", singles, origin


@pytest.fixture(scope="module")
def analyzed(four_channels, tmp_path_factory) -> list[dict[str, list[float]]]:
    out = tmp_path_factory.mktemp("analyzed")
    subprocess.run([sys.executable, "-m", "emotrack", "analyze", *map(str, four_channels[1]), "--out", str(out),
                    "--quiet", "--jobs", "1"], check=True, cwd=REPO, timeout=300)
    return [read_csv(out / f"ch{k + 1}.csv") for k in range(4)]


def test_parse_channels():
    assert parse_channels("1,2,5-8") == [0, 1, 4, 5, 6, 7]
    assert parse_channels("3", available=4) == [2]
    for bad in ("0", "2-1", "a", "1,,2"):
        with pytest.raises(ConfigError):
            parse_channels(bad)
    with pytest.raises(ConfigError, match="has 4 channels"):
        parse_channels("1-5", available=4)


def test_per_channel_file_equals_analyze_of_each_channel(four_channels, analyzed, tmp_path):
    """One batched MultiTracker over four streams gives each channel's own analyze numbers (to 1e-5)."""
    four, _, _ = four_channels
    csv = tmp_path / "run.csv"
    subprocess.run([sys.executable, "-m", "emotrack", "run", "--file", str(four), "--fast", "--per-channel", "--no-osc",
                    "--no-osc-in", "--no-ws", "--quiet", "--csv", str(csv)], check=True, cwd=REPO, timeout=300)
    for k in range(4):
        got = read_csv(tmp_path / f"run-ch{k + 1}.csv")
        assert len(got["valence"]) == len(analyzed[k]["valence"])
        for key in ("valence", "arousal", "valence_smoothed", "arousal_smoothed"):
            np.testing.assert_allclose(got[key], analyzed[k][key], atol=1e-5, err_msg=f"ch{k + 1} {key}")
    # the four passages really differ, so the equality above is per channel, not one mix four times
    assert np.std([np.mean(a["arousal"]) for a in analyzed]) > 0.02


def _pulse_ready() -> bool:
    if not os.environ.get("EMOTRACK_PULSE") or shutil.which("paplay") is None:
        return False
    return subprocess.run(["pactl", "info"], capture_output=True, timeout=5).returncode == 0


@pytest.fixture
def sink4():
    """A 4-channel null sink next to the suite's stereo one; its monitor is what `--device pulse` records."""
    if not _pulse_ready():
        pytest.skip("no PulseAudio null sink (run through scripts/test.sh, which starts one)")
    if shutil.which("oscdump") is None:
        pytest.skip("liblo-tools (oscdump) not installed")
    res = subprocess.run(["pactl", "load-module", "module-null-sink", "sink_name=emotrack_sink4", "rate=44100",
                          "channels=4", "channel_map=front-left,front-right,rear-left,rear-right"],
                         capture_output=True, text=True, timeout=10)
    if res.returncode != 0:
        pytest.skip(f"cannot add a 4-channel null sink: {res.stderr.strip()}")
    yield "emotrack_sink4"
    subprocess.run(["pactl", "unload-module", res.stdout.strip()], capture_output=True, timeout=10)


def _best_lag_error(live: dict[str, list[float]], offline: dict[str, list[float]]) -> float:
    """Mean |difference| of raw valence and arousal at the hop lag that aligns them best (capture starts a moment
    before playback)."""
    live_a = np.stack([live["valence"], live["arousal"]], axis=1)
    offline_a = np.stack([offline["valence"], offline["arousal"]], axis=1)
    errors = []
    for lag in range(0, 12):
        n = min(len(live_a) - lag, len(offline_a))
        if n >= 12:
            errors.append(float(np.mean(np.abs(live_a[lag: lag + n] - offline_a[:n]))))
    return min(errors)


def test_per_channel_live_capture_from_a_4_channel_sink(sink4, four_channels, analyzed, tmp_path):
    four, _, origin = four_channels
    if origin != "4q":
        pytest.skip("needs ../shared/data/4q: four songs of four moods, distinct enough to tell the channels apart")
    osc_port = free_port(socket.SOCK_DGRAM)
    dump = subprocess.Popen(["oscdump", "-L", str(osc_port)], stdout=subprocess.PIPE, text=True)
    csv = tmp_path / "live.csv"
    env = {**os.environ, "PULSE_SOURCE": f"{sink4}.monitor"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emotrack", "run", "--device", "pulse", "--channels", "1-4", "--per-channel",
         "--osc", f"127.0.0.1:{osc_port}", "--no-osc-in", "--no-ws", "--quiet", "--duration", "19", "--csv", str(csv)],
        cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(3)  # the model loads and the capture stream opens
    subprocess.run(["paplay", f"--device={sink4}", "--channel-map=front-left,front-right,rear-left,rear-right",
                    str(four)], check=True, timeout=60, env=env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    dump.terminate()
    lines = dump.communicate(timeout=10)[0].splitlines()
    for k in range(1, 5):
        assert any(f" /emotrack/ch{k}/valence f " in line for line in lines), f"no OSC for ch{k}"
    live = [read_csv(tmp_path / f"live-ch{k + 1}.csv") for k in range(4)]
    for k in range(4):
        own = _best_lag_error(live[k], analyzed[k])
        others = [_best_lag_error(live[k], analyzed[j]) for j in range(4) if j != k]
        assert own < min(others), f"ch{k + 1}: own channel error {own:.3f}, others {others}"
        assert own < 0.15, f"ch{k + 1}: live differs from analyze by {own:.3f} on average"


class Radio:
    """A tiny Icecast stand-in: serves one file at its real-time byte rate; :meth:`kill` drops every listener."""

    def __init__(self, path: Path, seconds: float, port: int) -> None:
        data = path.read_bytes()
        rate = len(data) / seconds
        self.killed = threading.Event()
        killed = self.killed

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", "audio/ogg")
                self.end_headers()
                start = time.monotonic()
                for offset in range(0, len(data), 4096):
                    if killed.is_set():
                        return
                    delay = start + offset / rate - 2.0 - time.monotonic()  # 2 s ahead, like a server's burst
                    if delay > 0:
                        time.sleep(delay)
                    try:
                        self.wfile.write(data[offset: offset + 4096])
                    except OSError:
                        return

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kill(self) -> None:
        self.killed.set()
        self.server.shutdown()
        self.server.server_close()


def test_network_stream_reconnects_after_the_server_restarts(tmp_path):
    pytest.importorskip("av", reason="--url needs PyAV (pip install av)")
    from emotrack.assets import EXAMPLE_AUDIO
    from emotrack.audio import audio_seconds

    seconds = audio_seconds(EXAMPLE_AUDIO)
    http_port, ws_port = free_port(), free_port()
    url = f"http://127.0.0.1:{http_port}/radio.ogg"
    seqs: list[tuple[float, int]] = []  # (arrival, seq) of the radio stream's hops

    async def listen(seconds: float) -> None:
        async with await ws_connect(ws_port) as ws:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                with contextlib.suppress(TimeoutError):
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                    if msg["type"] == "emotion":
                        assert msg["stream"] == "radio"
                        seqs.append((time.monotonic(), msg["seq"]))

    radio = Radio(EXAMPLE_AUDIO, seconds, http_port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "emotrack", "run", "--url", f"radio={url}", "--no-osc", "--no-osc-in", "--quiet",
         "--ws-port", str(ws_port)], cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        listener = threading.Thread(target=asyncio.run, args=(listen(45),))
        listener.start()
        deadline = time.monotonic() + 40
        while len(seqs) < 6 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(seqs) >= 6, "no hops from the network stream"
        radio.kill()  # every listener dropped, nobody answering on the port
        killed_at = time.monotonic()
        time.sleep(5)
        radio = Radio(EXAMPLE_AUDIO, seconds, http_port)
        listener.join(60)
    finally:
        radio.kill()
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    before = [s for t, s in seqs if t < killed_at]
    after = [s for t, s in seqs if t > killed_at + 8]
    assert after, f"no hops after the server came back:\n{err}"
    assert after[0] > before[-1], "the stream's seq goes on after the gap"
    assert "lost" in err and "is back" in err, err


def test_url_without_pyav_or_bad_channel_selection_is_one_line(cli):
    from conftest import assert_one_line_error

    assert_one_line_error(cli("run", "--channels", "1-2", "--no-osc", "--duration", "1"), "--per-channel")
    assert_one_line_error(cli("run", "--channels", "2-1", "--per-channel", "--no-osc", "--duration", "1"), "channels")
    # checked with the other option combinations, before the model loads
    assert_one_line_error(cli("run", "--per-channel", "--session", "s", "--append", "--no-osc"), "one stream")


def test_dashboard_shows_one_stream_of_several(four_channels, tmp_path):
    """In headless Chromium: ?stream=ch3 shows that stream only; without it the page settles on the first it hears."""
    from cdp import Browser
    from liverun import LiveRun

    four, _, _ = four_channels
    run = LiveRun(four, "--per-channel")  # returns once the server printed its address: it is listening
    try:
        with Browser() as browser:
            page = browser.new_page(f"http://127.0.0.1:{run.port}/?stream=ch3")
            page.wait_for("window.emotrack && window.emotrack.hops >= 4", timeout=60)
            assert "ch3" in page.evaluate("document.getElementById('model').textContent")
            # one stream's hops, not four streams' interleaved: no restarts, nothing missed
            assert page.evaluate("window.emotrack.missed") == 0
            other = browser.new_page(f"http://127.0.0.1:{run.port}/")
            other.wait_for("window.emotrack && window.emotrack.hops >= 4", timeout=60)
            assert other.evaluate("document.title").startswith("emotrack · ch")
            assert other.evaluate("window.emotrack.missed") == 0
    finally:
        run.close()
