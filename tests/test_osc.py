"""OscSender against real receivers: liblo's ``oscdump`` and python-osc servers, over UDP on localhost."""

import queue
import shutil
import socket
import subprocess
import threading
import time

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_bundle_builder import IMMEDIATELY
from pythonosc.osc_server import ThreadingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from emotrack.errors import ConfigError
from emotrack.realtime.messages import HopMessage, quadrant_of
from emotrack.realtime.osc import ADDRESSES, OscSender, parse_target, validate_prefix
from tests.conftest import free_port

SUFFIXES = [a.suffix for a in ADDRESSES]


def hop(seq, valence=0.5, arousal=-0.3, valence_raw=0.7, arousal_raw=-1.0):
    return HopMessage(
        seq=seq,
        stream_time=(seq + 1) * 0.5,
        wall_time=time.time(),
        valence=valence,
        arousal=arousal,
        valence_raw=valence_raw,
        arousal_raw=arousal_raw,
        quadrant=quadrant_of(valence, arousal),
        model="test",
        latency_ms={"inference": 3.0, "total": 42.5},
        dropped_samples=seq * 10,
        confidence=0.8125,
    )


def expected(msg, scale):
    unit = (lambda x: (x + 1) / 2) if scale == "0..1" else (lambda x: x)
    return [
        unit(msg.valence), unit(msg.arousal), unit(msg.valence_raw), unit(msg.arousal_raw),
        msg.quadrant, float(msg.active), msg.confidence, msg.seq, msg.latency_ms["total"], msg.dropped_samples,
    ]  # fmt: skip


@pytest.fixture
def oscdump():
    """Run ``oscdump -L PORT`` and yield (port, queue of its output lines) once it is receiving."""
    if shutil.which("oscdump") is None:
        pytest.skip("oscdump not on PATH (Debian/Ubuntu: apt install liblo-tools)")
    port = free_port(socket.SOCK_DGRAM)
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE, text=True) as proc:
        reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
        reader.start()
        try:
            with SimpleUDPClient("127.0.0.1", port) as probe:
                deadline = time.monotonic() + 5
                while True:  # oscdump prints nothing when it starts listening, so probe until it echoes
                    assert time.monotonic() < deadline, "oscdump did not start"
                    probe.send_message("/probe", 1.0)
                    try:
                        if "/probe" in lines.get(timeout=0.1):
                            break
                    except queue.Empty:
                        pass
            time.sleep(0.1)
            while not lines.empty():
                lines.get()
            yield port, lines
        finally:
            proc.terminate()
            reader.join(timeout=5)


@pytest.mark.parametrize("scale", ["0..1", "-1..1"])
def test_oscdump_receives_one_bundle_of_floats_per_hop(oscdump, scale):
    port, lines = oscdump
    hops = [hop(0), hop(1, valence=-1.0, arousal=1.0), hop(2, valence=0.25, arousal=0.0, valence_raw=1.0)]
    with OscSender([("127.0.0.1", port)], prefix="/emotrack", scale=scale) as sender:
        for msg in hops:
            sender.send(msg)
            time.sleep(0.01)  # distinct receive times, so distinct timetags for distinct packets
    # oscdump prints "TIMETAG ADDRESS TYPES VALUES..."; messages from one bundle share its timetag.
    rows = [lines.get(timeout=5).split() for _ in range(len(hops) * len(ADDRESSES))]
    time.sleep(0.1)
    assert lines.empty(), "more messages than expected"

    timetags = list(dict.fromkeys(row[0] for row in rows))
    assert len(timetags) == len(hops), "expected exactly one bundle per hop"
    for msg, tag in zip(hops, timetags, strict=True):
        bundle = [row for row in rows if row[0] == tag]
        assert [row[1] for row in bundle] == ["/emotrack" + s for s in SUFFIXES]
        assert all(row[2] == "f" for row in bundle), "every argument must be one float32"
        values = [float(row[3]) for row in bundle]
        np.testing.assert_allclose(values, expected(msg, scale), atol=1e-6)
        if scale == "0..1":
            assert all(0.0 <= v <= 1.0 for v in values[:4])


def test_python_osc_receivers_on_several_targets():
    received: list[list[tuple[str, list]]] = [[], []]
    servers = []
    for sink in received:
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(lambda address, *args, sink=sink: sink.append((address, list(args))))
        server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a third target: raw datagrams
    raw.bind(("127.0.0.1", 0))
    raw.settimeout(5)
    targets = [("127.0.0.1", s.server_address[1]) for s in servers] + [("127.0.0.1", raw.getsockname()[1])]

    # numpy scalars, as a model would produce them, must be cast before python-osc sees them.
    hops = [hop(k, valence=np.float32(-0.5 + 0.2 * k), valence_raw=np.float64(0.1)) for k in range(5)]
    try:
        with OscSender(targets, prefix="/viz/emo", scale="-1..1") as sender:
            for msg in hops:
                sender.send(msg)
        for _ in hops:
            packet = raw.recv(65536)
            assert OscBundle.dgram_is_bundle(packet)
            bundle = OscBundle(packet)
            assert bundle.timestamp == IMMEDIATELY and bundle.num_contents == len(ADDRESSES)
            for message in bundle:
                tags = message.dgram[message.dgram.index(b",") :].split(b"\0")[0]
                assert tags == b",f" and len(message.params) == 1
        deadline = time.monotonic() + 5
        while any(len(sink) < len(hops) * len(ADDRESSES) for sink in received):
            assert time.monotonic() < deadline, "receivers did not get every message"
            time.sleep(0.01)
    finally:
        raw.close()
        for server in servers:
            server.shutdown()
            server.server_close()

    want = [
        ("/viz/emo" + suffix, [pytest.approx(value, abs=1e-6)])
        for msg in hops
        for suffix, value in zip(SUFFIXES, expected(msg, "-1..1"), strict=True)
    ]
    for sink in received:
        assert sink == want
        assert all(type(args[0]) is float for _, args in sink)


def test_send_after_close_is_a_no_op():
    sender = OscSender([("127.0.0.1", free_port(socket.SOCK_DGRAM))])
    sender.close()
    sender.send(hop(0))
    sender.close()


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("studio.local:7000", ("studio.local", 7000)),
        ("[::1]:57120", ("::1", 57120)),
    ],
)
def test_parse_target(text, result):
    assert parse_target(text) == result


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("127.0.0.1", "OSC target '127.0.0.1' must be HOST:PORT, e.g. 127.0.0.1:9000"),
        ("host:0", "OSC target 'host:0': port must be in 1..65535"),
        ("host:65536", "OSC target 'host:65536': port must be in 1..65535"),
        ("host:osc", "OSC target 'host:osc': port must be a number"),
        (":9000", "OSC target ':9000' has no host"),
        ("::1:9000", "OSC target '::1:9000': write IPv6 addresses in brackets, e.g. [::1]:9000"),
    ],
)
def test_parse_target_errors(text, message):
    with pytest.raises(ConfigError) as info:
        parse_target(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "prefix", ["emo", "/emo/", "/a//b", "/emo track", "/emo#", "/emo*", "/a,b", "/a?", "/[a]", "/{a}", "/é"]
)
def test_bad_prefix(prefix):
    with pytest.raises(ConfigError, match="OSC prefix"):
        validate_prefix(prefix)
    with pytest.raises(ConfigError, match="OSC prefix"):
        OscSender([("127.0.0.1", 9000)], prefix=prefix)


def test_sender_config_errors():
    with pytest.raises(ConfigError, match="no OSC targets"):
        OscSender([])
    with pytest.raises(ConfigError, match=r"unknown OSC scale '1\.\.9'"):
        OscSender([("127.0.0.1", 9000)], scale="1..9")
    with pytest.raises(ConfigError, match="cannot resolve OSC host"):
        OscSender([("no-such-host.invalid", 9000)])
