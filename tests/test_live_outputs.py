"""`emotrack run` end to end: a paced file, a real OSC receiver and real WebSocket clients."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

from tests.conftest import REPO, free_port, ws_messages


def test_run_serves_osc_and_websocket(example_audio, tmp_path):
    received: list[tuple[str, float]] = []
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: received.append((address, *args)))
    osc_server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    threading.Thread(target=osc_server.serve_forever, daemon=True).start()
    ws_port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emotrack", "run", "--file", str(example_audio), "--duration", "6", "--quiet",
         "--osc", f"127.0.0.1:{osc_server.server_address[1]}", "--osc-range", "0..1", "--ws-port", str(ws_port),
         "--csv", str(tmp_path / "run.csv")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )

    try:
        messages = asyncio.run(asyncio.wait_for(ws_messages(ws_port), 60))
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        osc_server.shutdown()
    assert proc.returncode == 0, err
    assert messages[0]["type"] == "hello" and messages[0]["hop_s"] == 0.5
    hops = [m for m in messages if m["type"] == "emotion"]
    assert len(hops) >= 8
    seqs = [m["seq"] for m in hops]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # in order, no gaps for a healthy client
    for m in hops:
        assert -1 <= m["valence"] <= 1 and -1 <= m["arousal"] <= 1 and 0 <= m["confidence"] <= 1
        assert m["quadrant"] in ((1, 2, 3, 4) if m["active"] else (0,))
        assert set(m["latency_ms"]) >= {"capture", "features", "inference", "smoothing", "total"}
        assert m["stream_time"] == pytest.approx(0.5 * (m["seq"] + 1))
    valences = [args[0] for address, *args in received if address == "/emotrack/valence"]
    assert len(valences) >= 8 and all(0 <= v <= 1 for v in valences)
    by_seq = {m["seq"]: m for m in hops}
    raws = [args[0] for address, *args in received if address == "/emotrack/valence_raw"]
    # OSC 0..1 is (x + 1) / 2 of the JSON value
    assert raws[-1] == pytest.approx((by_seq[max(by_seq)]["raw"]["valence"] + 1) / 2, abs=1e-5)


def test_one_failing_output_never_stops_the_others(caplog):
    """``dispatch`` counts an output's exception per hop, logs it once, and still feeds every other output."""
    from emotrack.realtime.sinks import dispatch

    class Broken:
        name, errors = "broken", 0

        def send(self, hop):
            raise RuntimeError("boom")

    class Counting:
        name, errors = "counting", 0

        def __init__(self):
            self.got = []

        def send(self, hop):
            self.got.append(hop)

    good, failures = Counting(), {}
    for hop in range(3):
        dispatch([Broken(), good], hop, failures)
    assert good.got == [0, 1, 2] and failures == {"broken": 3}
    assert sum("output broken failed" in r.getMessage() for r in caplog.records) == 1
