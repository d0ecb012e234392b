"""MIDI CC output: the mapping, 14-bit pairs, change-only sending and ramps through the sink API with a recording
mido port (always runs), then real MIDI ports end to end: ``emotrack run`` on the bundled example sending to a
virtual port read back here, in a second process, compared hop by hop with the same run's OSC values.

The end-to-end tests use the ALSA sequencer when /dev/snd/seq exists, else a JACK server of their own (jackd's
dummy driver, no sound card), else skip with the reason.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import mido
import pytest
from mido.ports import BaseOutput
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from emotrack.errors import ConfigError
from emotrack.realtime.messages import HopMessage
from emotrack.realtime.midi import (
    MIDI_CCS,
    MidiSink,
    cc_map,
    cc_value,
    parse_cc_overrides,
    resolve_port,
)
from tests.conftest import REPO, run_cli


class RecordingPort(BaseOutput):
    """A mido output that keeps what it is sent."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__(name="recording")
        self.sent: list[mido.Message] = []
        self.fail = fail

    def _send(self, msg: mido.Message) -> None:
        if self.fail:
            raise OSError("port vanished")
        self.sent.append(msg)

    def take(self) -> list[tuple[int, int, int]]:
        """(channel, control, value) of everything sent since the last call."""
        out = [(m.channel, m.control, m.value) for m in self.sent]
        self.sent.clear()
        return out


def hop(t: float, valence=0.0, arousal=0.0, valence_raw=0.0, arousal_raw=0.0, quadrant=1, confidence=1.0,
        active=True, stream=None) -> HopMessage:
    return HopMessage(seq=round(t / 0.5) - 1, stream_time=t, wall_time=0.0, valence=valence, arousal=arousal,
                      valence_raw=valence_raw, arousal_raw=arousal_raw, quadrant=quadrant, model="m",
                      latency_ms={"total": 1.0}, confidence=confidence, active=active, stream=stream)


def sink(**kwargs) -> tuple[MidiSink, RecordingPort]:
    port = RecordingPort()
    return MidiSink(output=port, **kwargs), port


def test_seven_bit_values_on_the_documented_ccs():
    s, port = sink()
    s.send_message(hop(0.5, valence=-1, arousal=1, valence_raw=0, arousal_raw=0.5, quadrant=3, confidence=0.5))
    assert port.take() == [(0, 20, 0), (0, 21, 127), (0, 22, 64), (0, 23, 95), (0, 24, 95), (0, 25, 64), (0, 26, 127)]
    assert [c.default for c in MIDI_CCS] == [20, 21, 22, 23, 24, 25, 26]  # what the README's table says


def test_quadrant_and_active_values():
    assert [cc_value("quadrant", q) for q in range(5)] == [0, 32, 64, 95, 127]
    assert cc_value("active", True) == 127 and cc_value("active", False) == 0
    assert cc_value("valence", 5.0) == 127 and cc_value("valence", -5.0) == 0  # clamped
    assert cc_value("valence", float("nan")) is None


def test_only_changes_are_sent_and_everything_every_refresh():
    s, port = sink(refresh_s=5.0)
    s.send_message(hop(0.5, valence=0.2))
    assert len(port.take()) == 7
    s.send_message(hop(1.0, valence=0.2))
    assert port.take() == []
    s.send_message(hop(1.5, valence=0.9, quadrant=1))
    assert port.take() == [(0, 20, cc_value("valence", 0.9))]
    s.send_message(hop(5.0, valence=0.9))
    assert port.take() == []
    s.send_message(hop(5.5, valence=0.9))  # 5 s of audio after the first hop: all again
    assert [c for _, c, _ in port.take()] == [20, 21, 22, 23, 24, 25, 26]


def test_refresh_zero_sends_every_cc_every_hop():
    s, port = sink(refresh_s=0)
    for t in (0.5, 1.0, 1.5):
        s.send_message(hop(t))
        assert len(port.take()) == 7


def test_fourteen_bit_pairs_msb_then_lsb():
    s, port = sink(fourteen_bit=True)
    s.send_message(hop(0.5, valence=0.0, arousal=1.0, valence_raw=-1.0, arousal_raw=0.5, quadrant=2, confidence=0.3))
    sent = port.take()
    assert sent[:4] == [(0, 20, 64), (0, 52, 0), (0, 21, 127), (0, 53, 127)]  # 8192 = 64 << 7; 16383
    assert sent[4:6] == [(0, 22, 0), (0, 54, 0)]
    arousal_raw = int(0.75 * 16383 + 0.5)
    assert sent[6:8] == [(0, 23, arousal_raw >> 7), (0, 55, arousal_raw & 0x7F)]
    assert sent[8] == (0, 24, 64)  # quadrant stays one 7-bit CC
    confidence = int(0.3 * 16383 + 0.5)
    assert sent[9:11] == [(0, 25, confidence >> 7), (0, 57, confidence & 0x7F)]
    assert sent[11] == (0, 26, 127)
    assert len(sent) == 12


def test_cc_map_overrides_and_validation():
    assert cc_map({"valence": 30})["valence"] == 30
    assert "valence_raw" not in cc_map({"valence_raw": None})
    assert parse_cc_overrides(["valence=30", "arousal-raw=off"]) == {"valence": 30, "arousal_raw": None}
    bad = [
        ({"warmth": 3}, False, "unknown value 'warmth'"),
        ({"valence": 120}, False, "0 to 119"),
        ({"valence": 40}, True, "14-bit pairs need CC 0-31"),
        ({"arousal": 20}, False, "arousal and valence are both on CC 20"),
        ({"quadrant": 52}, True, "valence's LSB are both on CC 52"),
        ({c.field: None for c in MIDI_CCS}, False, "nothing to send"),
    ]
    for overrides, wide, text in bad:
        with pytest.raises(ConfigError, match=re.escape(text)):
            cc_map(overrides, fourteen_bit=wide)
    with pytest.raises(ConfigError, match="NAME=CC"):
        parse_cc_overrides(["valence"])
    with pytest.raises(ConfigError, match="integer"):
        parse_cc_overrides(["valence=x"])


def test_channel_and_one_channel_per_stream(caplog):
    s, port = sink(channel=16)
    s.send_message(hop(0.5))
    assert {ch for ch, _, _ in port.take()} == {15}
    s, port = sink(channel=3)
    s.send_message(hop(0.5, stream="ch1"))
    s.send_message(hop(0.5, stream="ch2"))
    assert [ch for ch, _, _ in port.take()] == [2] * 7 + [3] * 7
    s, port = sink(channel=16)
    with caplog.at_level(logging.WARNING):
        s.send_message(hop(0.5, stream="a"))
        s.send_message(hop(0.5, stream="b"))  # would be channel 17
    assert len(port.take()) == 7 and "not sent" in caplog.text


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_ramps_between_hops():
    clock = Clock()
    s, port = sink(rate=50, clock=clock, ccs={"arousal": None, "valence_raw": None, "arousal_raw": None,
                                             "confidence": None})
    try:
        s.send_message(hop(0.5, valence=-1, quadrant=3))
        assert port.take() == [(0, 20, 0), (0, 24, 95), (0, 26, 127)]
        clock.t = 10.0
        s.send_message(hop(1.0, valence=1, quadrant=1))  # a ramp over one hop (0.5 s) starts; quadrant steps
        assert port.take() == [(0, 24, 32)]
        clock.t = 10.25
        s.tick()
        clock.t = 10.5
        s.tick()
        clock.t = 11.0
        s.tick()
        assert port.take() == [(0, 20, 64), (0, 20, 127)]  # the timer thread may have sent either first: same list
        clock.t = 20.0
        s.send_message(hop(1.5, valence=-1))
        clock.t = 20.25
        s.tick()
        s.send_message(hop(2.0, valence=1))  # mid-ramp: the next one starts where this one is
        clock.t = 20.5
        s.tick()
        assert port.take() == [(0, 20, 64), (0, 20, 95)]
    finally:
        s.close()


def test_ramps_with_the_timer_thread():
    s, port = sink(rate=100, ccs={c.field: None for c in MIDI_CCS if c.field != "valence"})
    try:
        s.send_message(hop(0.5, valence=-1))
        s.send_message(hop(1.0, valence=1))
        time.sleep(0.8)
    finally:
        s.close()
    values = [v for _, _, v in port.take()]
    assert values[0] == 0 and values[-1] == 127
    assert values == sorted(values) and len(set(values)) >= 10, values  # a ramp, not a step


def test_send_failures_are_counted_and_logged_once(caplog):
    port = RecordingPort(fail=True)
    s = MidiSink(output=port)
    with caplog.at_level(logging.WARNING, logger="emotrack.realtime.midi"):
        s.send_message(hop(0.5))
        s.send_message(hop(1.0, valence=0.5))
    assert s.errors == 14  # nothing got through, so the second hop tries every CC again
    assert len([r for r in caplog.records if "MIDI send" in r.message]) == 1
    s.close()
    s.close()
    s.send_message(hop(1.5))  # after close: ignored, no error
    assert s.errors == 14


def test_missing_extra_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "mido", None)
    with pytest.raises(ConfigError, match=re.escape("MIDI needs the midi extra: pip install 'emotrack[midi]'")):
        MidiSink(virtual="x")


def test_resolve_port():
    names = ["Midi Through:Midi Through Port-0 14:0", "USB MIDI:USB MIDI 1 20:0", "USB MIDI:USB MIDI 2 20:1"]
    assert resolve_port("1", names) == names[1]
    assert resolve_port("through", names) == names[0]
    assert resolve_port(names[2], names) == names[2]
    with pytest.raises(ConfigError, match="matches several"):
        resolve_port("usb", names)
    with pytest.raises(ConfigError, match=r"no MIDI output port matches 'x'; available: 0 'Midi Through"):
        resolve_port("x", names)
    with pytest.raises(ConfigError, match="available: none"):
        resolve_port("x", [])


def test_plain_path_does_not_import_mido():
    code = ("import sys, emotrack.cli, emotrack.realtime.live, emotrack.realtime.midi; "
            "assert not {'mido', 'rtmidi'} & set(sys.modules), sorted({'mido', 'rtmidi'} & set(sys.modules))")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_bad_options_fail_before_the_model_loads(tmp_path):
    for args, text in [
        (["--midi-virtual", "x", "--midi-cc", "valence=200"], "--midi-cc valence=200: CC numbers are 0 to 119"),
        (["--midi-virtual", "x", "--midi-14bit", "--midi-cc", "arousal=33"],
         "--midi-14bit: arousal is on CC 33; 14-bit pairs"),
        (["--midi-virtual", "x", "--midi-channel", "17"], "--midi-channel must be 1 to 16"),
        (["--midi-virtual", "x", "--midi", "y"], "give either --midi PORT or --midi-virtual NAME, not both"),
        (["--midi-rate", "30"], "--midi-rate needs --midi PORT or --midi-virtual NAME"),
    ]:
        result = run_cli("run", "--no-ws", "--no-osc", *args, timeout=60)
        assert result.returncode == 2, result
        assert result.stderr.startswith(f"emotrack: error: {text}") and result.stderr.count("\n") == 1, result
    config = tmp_path / "run.toml"
    config.write_text('[run]\nmidi_virtual = "x"\nmidi_cc = ["valence=30", "confidence=off"]\nmidi_refresh = -1\n')
    result = run_cli("run", "--config", str(config), timeout=60)
    assert result.returncode == 2 and "--midi-refresh must be 0 (every hop) to 3600 seconds" in result.stderr


# --- real ports ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def midi_system():
    """Environment for a real rtmidi backend: the ALSA sequencer if the kernel has one, else a private JACK server."""
    pytest.importorskip("rtmidi", reason="python-rtmidi missing: pip install 'emotrack[midi]'")
    if os.path.exists("/dev/snd/seq"):
        yield {"MIDO_BACKEND": "mido.backends.rtmidi/LINUX_ALSA"}
        return
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        pytest.skip("no MIDI system: no ALSA sequencer (/dev/snd/seq; the snd-seq module is the host kernel's, "
                    "modprobe is not available in a container) and no jackd to run one (apt-get install jackd2)")
    name = f"emotrack-test-{os.getpid()}"
    env = {"MIDO_BACKEND": "mido.backends.rtmidi/UNIX_JACK", "JACK_DEFAULT_SERVER": name,
           "JACK_NO_START_SERVER": "1", "JACK_NO_AUDIO_RESERVATION": "1"}
    # 4096-frame periods: JACK carries at most one period's buffer of MIDI events per cycle and rtmidi drops the
    # rest; --fast sends a whole recording's CCs in well under a second, real time sends 14 messages a second.
    jackd = subprocess.Popen(["jackd", "--no-realtime", "-n", name, "-d", "dummy", "-r", "48000", "-p", "4096"],
                             env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 15
    while subprocess.run(["jack_lsp", "-s", name], capture_output=True).returncode != 0:
        if jackd.poll() is not None or time.monotonic() > deadline:
            jackd.kill()
            pytest.skip(f"jackd (dummy driver) did not start: {jackd.stderr.read()[-300:]}")
        time.sleep(0.1)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        jackd.terminate()
        jackd.wait(10)


def _backend(env: dict[str, str]) -> mido.Backend:
    return mido.Backend(env["MIDO_BACKEND"])


class OscHops:
    """A python-osc receiver collecting one dict per bundle (one bundle per hop), in arrival order."""

    def __init__(self) -> None:
        self.hops: list[dict[str, float]] = []
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._add)
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _add(self, address: str, value: float) -> None:
        name = address.removeprefix("/emotrack/")
        if name == "valence":
            self.hops.append({})
        self.hops[-1][name] = value

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _expected(osc_hop: dict[str, float]) -> list[tuple[int, set[int]]]:
    """The CCs one hop should produce, from its OSC values (-1..1 range): each with the values it may take.

    Written out here rather than taken from the sink: (x + 1) / 2 * 127 rounded half up. OSC carries float32, so
    a value within 1e-6 of a rounding boundary may land on either side.
    """
    def seven(unit: float) -> set[int]:
        return {int(min(1, max(0, u)) * 127 + 0.5) for u in (unit - 1e-6, unit + 1e-6)}

    out = []
    for field, number in [("valence", 20), ("arousal", 21), ("valence_raw", 22), ("arousal_raw", 23)]:
        out.append((number, seven((osc_hop[field] + 1) / 2)))
    out.append((24, {[0, 32, 64, 95, 127][int(osc_hop["quadrant"])]}))
    out.append((25, seven(osc_hop["confidence"])))
    out.append((26, {127 if osc_hop["active"] else 0}))
    return out


def _run(midi_args: list[str], osc: OscHops, env: dict[str, str], pace: list[str]) -> subprocess.Popen:
    from emotrack.assets import EXAMPLE_AUDIO

    return subprocess.Popen(
        [sys.executable, "-m", "emotrack", "run", "--file", str(EXAMPLE_AUDIO), *pace, "--quiet", "--no-ws",
         "--no-osc-in", "--osc", f"127.0.0.1:{osc.port}", "--osc-range=-1..1", *midi_args],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> int:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    hops = int(re.search(r"emotrack: (\d+) hops", err).group(1))
    time.sleep(0.3)  # the last messages on their way through the MIDI system
    return hops


def test_virtual_port_sends_each_hops_osc_values(midi_system):
    """--midi-virtual at real-time pace, every CC every hop (--midi-refresh 0): each hop's 7 CCs equal its OSC
    values, mapped. Real time because a port another program opens is joined a moment after it appears."""
    backend = _backend(midi_system)
    name = f"emotrack-virtual-{os.getpid()}"
    osc = OscHops()
    received: list[mido.Message] = []
    proc = _run(["--midi-virtual", name, "--midi-refresh", "0"], osc, midi_system, ["--duration", "4.2"])
    inport = None
    try:
        while inport is None and proc.poll() is None:  # a second process reading the port as soon as it exists
            found = [n for n in backend.get_input_names() if name in n]
            inport = backend.open_input(found[0], callback=received.append) if found else None
        joined = len(osc.hops)  # hops sent before this reader was on the port (a few under load) are not its to read
        hops = _finish(proc)
    finally:
        proc.kill()
        osc.close()
        if inport is not None:
            inport.close()
    assert inport is not None, "the virtual port never appeared"
    assert len(osc.hops) == hops >= 6
    ccs = [(m.control, m.value) for m in received if m.type == "control_change" and m.channel == 0]
    start = next(i for i, (control, _) in enumerate(ccs) if control == 20)  # we may have joined mid-hop
    groups = [ccs[i:i + 7] for i in range(start, len(ccs), 7)]
    assert len(groups) >= hops - joined - 1, f"only {len(groups)} of the {hops - joined} hops after joining read back"
    assert len(groups) >= 3, f"only {len(groups)} hops read back"
    for k, (group, osc_hop) in enumerate(zip(groups, osc.hops[-len(groups):], strict=True)):
        expected = _expected(osc_hop)
        assert [c for c, _ in group] == [c for c, _ in expected], k
        for (control, value), (_, allowed) in zip(group, expected, strict=True):
            assert value in allowed, (k, control, value, allowed, osc_hop)


def test_existing_port_gets_only_changes_and_refreshes(midi_system):
    """--midi PORT (a port this process opened), defaults, the whole recording (--fast): the MIDI stream is exactly
    what the OSC values predict, hop by hop: changed CCs only, and every CC every 10th hop (5 s of audio)."""
    backend = _backend(midi_system)
    name = f"emotrack-reader-{os.getpid()}"
    received: list[mido.Message] = []
    inport = backend.open_input(name, virtual=True, callback=received.append)
    osc = OscHops()
    try:
        time.sleep(0.2)
        proc = _run(["--midi", name], osc, midi_system, ["--fast"])
        try:
            hops = _finish(proc)
        finally:
            proc.kill()
    finally:
        osc.close()
        inport.close()
    assert len(osc.hops) == hops > 100
    ccs = [(m.control, m.value) for m in received if m.type == "control_change" and m.channel == 0]
    i, last = 0, {}
    for k, osc_hop in enumerate(osc.hops):
        refresh = k % 10 == 0  # every CC every 5 s of audio: every 10th hop from the first
        for control, allowed in _expected(osc_hop):
            here = i < len(ccs) and ccs[i][0] == control and ccs[i][1] in allowed
            if here and (refresh or ccs[i][1] != last.get(control)):
                last[control] = ccs[i][1]
                i += 1
            else:
                assert not refresh and last.get(control) in allowed, (k, control, allowed, ccs[i:i + 3])
    assert i == len(ccs), f"{len(ccs) - i} unexpected messages at the end"
    assert len(ccs) < 7 * hops  # changes only: less than every CC every hop
