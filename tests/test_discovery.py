"""LAN discovery: services announced over mDNS/DNS-SD are found by a python-zeroconf browser with their TXT records,
through the API on loopback and through real ``emotrack run`` processes (forced on loopback, by default on a LAN
address), and are withdrawn when the run ends. Skips with the reason where multicast does not work here.
"""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from emotrack.realtime import discovery
from emotrack.realtime.messages import SCHEMA_VERSION
from tests.conftest import REPO, free_port

zeroconf = zeroconf_module = pytest.importorskip("zeroconf", reason="zeroconf missing: pip install zeroconf (a main "
                                                "dependency)")


class Browser:
    """A python-zeroconf browser on some interfaces, keeping what it has seen come and go."""

    def __init__(self, interfaces: list[str], *types: str) -> None:
        self.zc = zeroconf.Zeroconf(interfaces=interfaces, ip_version=zeroconf.IPVersion.V4Only)
        self.added: set[str] = set()
        self.removed: set[str] = set()
        self.changed = threading.Condition()
        self.browsers = [zeroconf.ServiceBrowser(self.zc, t, handlers=[self._on]) for t in types]

    def _on(self, zeroconf, service_type: str, name: str, state_change) -> None:  # zeroconf passes these by name
        with self.changed:
            gone = state_change is zeroconf_module.ServiceStateChange.Removed
            (self.removed if gone else self.added).add(name)
            self.changed.notify_all()

    def wait_for(self, test, timeout: float = 10) -> bool:
        with self.changed:
            return self.changed.wait_for(test, timeout)

    def info(self, service_type: str, name: str):
        return self.zc.get_service_info(service_type, name, timeout=3000)

    def close(self) -> None:
        for b in self.browsers:
            b.cancel()
        self.zc.close()


def _check_multicast(interface: str) -> None:
    """Skip unless a zeroconf socket opens on ``interface`` (multicast needs a route and IP_ADD_MEMBERSHIP)."""
    try:
        zeroconf.Zeroconf(interfaces=[interface], ip_version=zeroconf.IPVersion.V4Only).close()
    except OSError as exc:
        pytest.skip(f"no multicast on {interface} in this environment: {exc}")


def _lan_address() -> str:
    """This machine's address on its default route, or skip."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 9))
            address = s.getsockname()[0]
        except OSError:
            address = "127.0.0.1"
    if address.startswith("127."):
        pytest.skip("no non-loopback IPv4 address here to announce on")
    return address


def _services(ws_port: int, osc_port: int) -> list[discovery.Service]:
    return discovery.run_services(ws=("127.0.0.1", ws_port), tls=False, token=True, model="m-0.1.0",
                                  schema=SCHEMA_VERSION, osc_in=("127.0.0.1", osc_port), osc_prefix="/emotrack")


def test_announced_services_are_found_with_their_txt_records():
    _check_multicast("127.0.0.1")
    ws_port, osc_port = free_port(), free_port()
    services = _services(ws_port, osc_port)
    browser = Browser(["127.0.0.1"], discovery.SERVICE_TYPE, discovery.OSC_TYPE)
    lines: list[str] = []
    announcer = discovery.announce(services, say=lines.append, warn=lines.append)
    try:
        assert announcer is not None, lines
        assert len(announcer.wait()) == 2, lines
        names = {f"{s.instance}.{s.type}" for s in services}
        assert browser.wait_for(lambda: names <= browser.added), browser.added
        ws = browser.info(discovery.SERVICE_TYPE, f"{services[0].instance}.{discovery.SERVICE_TYPE}")
        assert ws.port == ws_port and ws.parsed_addresses() == ["127.0.0.1"]
        assert ws.decoded_properties == {"path": "/", "schema": str(SCHEMA_VERSION), "model": "m-0.1.0", "tls": "0",
                                         "token": "required"}
        assert set(ws.decoded_properties) == set(discovery.TXT_KEYS)  # the README's table
        assert ws.server == discovery.server_name() + "."
        osc = browser.info(discovery.OSC_TYPE, f"{services[1].instance}.{discovery.OSC_TYPE}")
        assert osc.port == osc_port and osc.decoded_properties == {"address": "/emotrack/marker", "types": "s"}
        assert lines == [f"announced on this machine only (loopback) over mDNS: {services[0].instance!r} "
                         f"(_emotrack._tcp), {services[1].instance!r} (_osc._udp)"]
    finally:
        if announcer is not None:
            announcer.close()
    assert browser.wait_for(lambda: names <= browser.removed), "no goodbye after close"
    browser.close()


def test_default_on_only_for_lan_binds():
    assert not discovery.wanted(None, ["127.0.0.1", "127.0.0.1"])
    assert not discovery.wanted(None, ["localhost", None])
    assert discovery.wanted(None, ["0.0.0.0", None])
    assert discovery.wanted(None, [None, "192.168.1.20"])  # only the OSC marker port on the LAN
    assert discovery.wanted(True, ["127.0.0.1"]) and not discovery.wanted(False, ["0.0.0.0"])


def test_loopback_services_are_left_out_when_others_serve_the_lan():
    address = _lan_address()
    _check_multicast(address)
    services = discovery.run_services(ws=(address, 1), tls=True, token=True, model="m", schema=2,
                                      osc_in=("127.0.0.1", 2), osc_prefix="/e")
    lines: list[str] = []
    announcer = discovery.announce(services, say=lines.append, warn=lines.append)
    try:
        assert [s.type for s in announcer.services] == [discovery.SERVICE_TYPE]
        assert [info.parsed_addresses() for info in announcer.infos] == [[address]]
        assert lines[1] == "not announced (loopback only): _osc._udp on 127.0.0.1:2"
    finally:
        announcer.close()


def test_a_failure_is_a_warning_not_an_error(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(19, "No such device")

    monkeypatch.setattr(zeroconf, "Zeroconf", broken)
    lines: list[str] = []
    assert discovery.announce(_services(1, 2), warn=lines.append, say=lines.append) is None
    assert lines == ["LAN discovery (mDNS) is off: [Errno 19] No such device (--no-mdns hides this warning)"]


def test_plain_import_does_not_load_zeroconf():
    code = ("import sys, emotrack.cli, emotrack.realtime.live, emotrack.realtime.discovery; "
            "assert 'zeroconf' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


class Run:
    """``emotrack run`` on the bundled example, looping, with its stderr collected."""

    def __init__(self, *args: str) -> None:
        from emotrack.assets import EXAMPLE_AUDIO

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emotrack", "run", "--file", str(EXAMPLE_AUDIO), "--loop", "--quiet", "--no-osc",
             *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    def wait_line(self, pattern: str, timeout: float = 60) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.stderr):
                found = re.search(pattern, line)
                if found:
                    return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}:\n" + "".join(self.stderr))

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(20)
        finally:
            self.proc.kill()


def test_run_with_mdns_on_loopback_announces_both_and_withdraws_them():
    _check_multicast("127.0.0.1")
    ws_port, osc_port = free_port(), free_port()
    browser = Browser(["127.0.0.1"], discovery.SERVICE_TYPE, discovery.OSC_TYPE)
    run = Run("--mdns", "--ws-host", "127.0.0.1", "--ws-port", str(ws_port), "--osc-in", f"127.0.0.1:{osc_port}")
    try:
        run.wait_line(r"announced on this machine only \(loopback\) over mDNS")
        host = discovery.server_name().removesuffix(".local")
        ws_name = f"emotrack on {host}:{ws_port}.{discovery.SERVICE_TYPE}"
        osc_name = f"emotrack markers on {host}:{osc_port}.{discovery.OSC_TYPE}"
        assert browser.wait_for(lambda: {ws_name, osc_name} <= browser.added, 15), (browser.added, run.stderr)
        info = browser.info(discovery.SERVICE_TYPE, ws_name)
        assert info.port == ws_port and info.decoded_properties["token"] == "none"
        assert info.decoded_properties["schema"] == str(SCHEMA_VERSION) and info.decoded_properties["tls"] == "0"
        assert info.decoded_properties["model"].startswith("mca-")
        assert browser.info(discovery.OSC_TYPE, osc_name).port == osc_port
        assert run.stop() == 0, run.stderr
        assert browser.wait_for(lambda: {ws_name, osc_name} <= browser.removed, 10), "no goodbye on SIGTERM"
    finally:
        run.stop()
        browser.close()


def test_run_on_a_lan_address_announces_by_default_without_the_token():
    address = _lan_address()
    _check_multicast(address)
    ws_port = free_port()
    browser = Browser([address], discovery.SERVICE_TYPE)
    run = Run("--ws-host", address, "--ws-port", str(ws_port), "--no-osc-in")
    try:
        token = run.wait_line(r"token=([\w-]+)").group(1)
        run.wait_line(r"announced on the LAN over mDNS")
        name = f"emotrack on {discovery.server_name().removesuffix('.local')}:{ws_port}.{discovery.SERVICE_TYPE}"
        assert browser.wait_for(lambda: name in browser.added, 15), (browser.added, run.stderr)
        info = browser.info(discovery.SERVICE_TYPE, name)
        assert info.parsed_addresses() == [address] and info.port == ws_port
        assert info.decoded_properties["token"] == "required"
        assert token not in repr(info.properties)
        connection = http.client.HTTPConnection(address, ws_port, timeout=10)  # the announced name is a valid Host
        connection.request("GET", "/", headers={"Host": f"{discovery.server_name()}:{ws_port}"})
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        run.stop()
        browser.close()


def test_run_on_loopback_announces_nothing_by_default():
    run = Run("--ws-host", "127.0.0.1", "--ws-port", str(free_port()), "--no-osc-in", "--duration", "1")
    try:
        assert run.proc.wait(60) == 0
        time.sleep(0.1)
        assert not any("mDNS" in line for line in run.stderr), run.stderr
    finally:
        run.stop()
