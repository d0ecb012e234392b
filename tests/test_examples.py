"""The examples open and match what emotrack sends: the Max patch, the Unity client, the TouchDesigner script, and
the README's quoted messages, checked against a real ``emotrack run`` where a stream is needed."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import shutil
import subprocess

import pytest
from conftest import REPO

from emotrack.realtime.live import LiveConfig
from emotrack.realtime.messages import QUADRANT_NAMES, HopMessage, to_json
from emotrack.realtime.osc import ADDRESSES, parse_target

EXAMPLES = REPO / "examples"
UNITY_STUB = REPO / "tests" / "data" / "UnityEngineStub.cs"
WANTED = ("hello", "history", "marker", "emotion")


# -- one real stream for the whole module -----------------------------------------------------------------------------

async def _collect(port: int, emotions: int = 4) -> list[str]:
    """Raw text of every message one client gets until it has seen each kind, with ``emotions`` hops."""
    from conftest import ws_connect

    texts: list[str] = []
    async with await ws_connect(port) as ws:
        await ws.send(json.dumps({"type": "marker", "label": "chorus"}))
        async with asyncio.timeout(60):
            while True:
                texts.append(await ws.recv())
                kinds = [json.loads(t)["type"] for t in texts]
                if all(k in kinds for k in WANTED) and kinds.count("emotion") >= emotions:
                    return texts


@pytest.fixture(scope="module")
def stream(example_audio):
    """A looping ``emotrack run`` on the bundled example, and the raw messages of one client: one of each kind."""
    from liverun import LiveRun

    run = LiveRun(example_audio)
    try:
        texts = asyncio.run(_collect(run.port))
        first = {}
        for text in texts:
            first.setdefault(json.loads(text)["type"], text)
        yield run, texts, first
    finally:
        run.close()


# -- Max ------------------------------------------------------------------------------------------------------------

MAX_SIGNATURES = {  # object -> (inlets, outlets) as Max 8 saves them; None: depends on the arguments
    "udpreceive": (1, 1), "line": (3, 2), "*": (2, 1), "i": (2, 1), "route": None, "sel": None,
}
UI_SIGNATURES = {"flonum": (1, 2), "number": (1, 2), "toggle": (1, 1), "message": (2, 1), "comment": (1, 0),
                 "pictslider": (2, 2)}


def _max_patch() -> tuple[dict[str, dict], list[dict]]:
    patch = json.loads((EXAMPLES / "max" / "emotrack.maxpat").read_text())["patcher"]
    assert patch["fileversion"] == 1 and patch["appversion"]["major"] >= 8
    boxes = [b["box"] for b in patch["boxes"]]
    by_id = {b["id"]: b for b in boxes}
    assert len(by_id) == len(boxes), "box ids must be unique"
    return by_id, [line["patchline"] for line in patch["lines"]]


def _objects(by_id: dict[str, dict], name: str) -> list[dict]:
    return [b for b in by_id.values() if b["maxclass"] == "newobj" and b["text"].split()[0] == name]


def test_max_patch_lines_connect_real_inlets_and_outlets():
    by_id, lines = _max_patch()
    for b in by_id.values():
        assert len(b.get("outlettype", [])) == b["numoutlets"], b
        if b["maxclass"] == "newobj":
            name, *args = b["text"].split()
            expected = MAX_SIGNATURES[name] or (len(args) + 1, len(args) + 1)
        else:
            expected = UI_SIGNATURES[b["maxclass"]]
        assert (b["numinlets"], b["numoutlets"]) == expected, b
    for line in lines:
        (src, outlet), (dst, inlet) = line["source"], line["destination"]
        assert src in by_id and dst in by_id, line
        assert 0 <= outlet < by_id[src]["numoutlets"] and 0 <= inlet < by_id[dst]["numinlets"], line


def test_max_patch_routes_exactly_what_the_sender_emits():
    by_id, lines = _max_patch()
    prefix, (_, port) = LiveConfig().osc_prefix, parse_target(LiveConfig().osc[0])
    (udp,) = _objects(by_id, "udpreceive")
    assert udp["text"] == f"udpreceive {port}"
    (route,) = _objects(by_id, "route")
    assert route["text"].split()[1:] == [prefix + a.suffix for a in ADDRESSES]
    assert any(line["source"][0] == udp["id"] and line["destination"] == [route["id"], 0] for line in lines)
    used = {line["source"][1] for line in lines if line["source"][0] == route["id"]}
    assert used == set(range(len(ADDRESSES))), "every address goes somewhere"


def test_max_patch_smooths_with_line_and_names_the_quadrants():
    by_id, lines = _max_patch()
    (route,) = _objects(by_id, "route")
    following: dict[str, list[str]] = {}
    for line in lines:
        following.setdefault(line["source"][0], []).append(line["destination"][0])

    def reaches(start: str, name: str, depth: int = 3) -> bool:
        nexts = following.get(start, [])
        return any(by_id[n].get("text", "").split()[:1] == [name] or (depth and reaches(n, name, depth - 1))
                   for n in nexts)

    suffixes = [a.suffix for a in ADDRESSES]
    for suffix in ("/valence", "/arousal", "/confidence"):
        outlet = suffixes.index(suffix)
        firsts = [line["destination"][0] for line in lines if line["source"] == [route["id"], outlet]]
        assert any(reaches(f, "line") or by_id[f]["text"].startswith("line") for f in firsts), suffix
    (pictslider,) = [b for b in by_id.values() if b["maxclass"] == "pictslider"]
    assert {line["destination"][1] for line in lines if line["destination"][0] == pictslider["id"]} == {0, 1}
    sets = {b["text"].removeprefix("set ") for b in by_id.values() if b["maxclass"] == "message"
            and b["text"].startswith("set ")}
    assert sets == set(QUADRANT_NAMES.values())


# -- Unity ----------------------------------------------------------------------------------------------------------

CLIENT_CS = EXAMPLES / "unity" / "EmotrackClient.cs"
CS_TYPES = {bool: {"bool"}, int: {"int", "long"}, float: {"float", "double"}, str: {"string"}}

CHECK_CS = r"""
using System;
using System.Globalization;
using System.Reflection;
using System.Threading;
using Emotrack;

public static class Check
{
    // Drive the MonoBehaviour as Unity would (OnEnable, then Update every frame) and print each parsed hop.
    public static int Main(string[] args)
    {
        var client = new EmotrackClient();
        var flags = BindingFlags.NonPublic | BindingFlags.Instance;
        typeof(EmotrackClient).GetField("port", flags).SetValue(client, int.Parse(args[0]));
        int seen = 0, wanted = int.Parse(args[1]);
        client.EmotionReceived += hop => {
            seen++;
            Console.WriteLine(string.Format(CultureInfo.InvariantCulture,
                "emotion {0} {1:R} {2:R} {3:R} {4:R} {5:R} {6} {7} {8:R} {9:R} {10}", hop.seq, hop.stream_time,
                hop.valence, hop.arousal, hop.raw.valence, hop.raw.arousal, hop.quadrant, hop.active ? 1 : 0,
                hop.confidence, hop.latency_ms.total, hop.dropped_samples));
        };
        typeof(EmotrackClient).GetMethod("OnEnable", flags).Invoke(client, null);
        var update = typeof(EmotrackClient).GetMethod("Update", flags);
        var deadline = DateTime.UtcNow.AddSeconds(40);
        while (seen < wanted && DateTime.UtcNow < deadline)
        {
            update.Invoke(client, null);
            Thread.Sleep(16);
        }
        Console.WriteLine("hello " + (client.Hello == null ? "none" : client.Hello.model));
        Console.WriteLine("state " + (client.Connected ? 1 : 0) + " " + client.QuadrantName);
        typeof(EmotrackClient).GetMethod("OnDisable", flags).Invoke(client, null);
        return seen >= wanted ? 0 : 1;
    }
}
"""


def _cs_classes(source: str) -> dict[str, dict[str, str]]:
    """``{class: {field: C# type}}`` of the public fields of every ``[Serializable]`` class."""
    classes = {}
    for name, body in re.findall(r"\[Serializable\]\s*public class (\w+)\s*\{(.*?)\n    \}", source, re.S):
        classes[name] = {f: t for t, f in re.findall(r"public (\w+) (\w+);", body)}
    return classes


def _assert_mirrors(fields: dict[str, str], message: dict, what: str) -> None:
    assert list(fields) == list(message), f"{what}: C# fields {list(fields)} != JSON keys {list(message)}"
    for key, value in message.items():
        if not isinstance(value, dict):
            assert fields[key] in CS_TYPES[type(value)], f"{what}.{key}: C# {fields[key]} for JSON {value!r}"


def _mcs() -> str:
    found = shutil.which("mcs")
    if found is None:
        pytest.skip("mcs not found: Mono's C# compiler checks the Unity example (apt-get install mono-mcs)")
    return found


def test_unity_client_compiles_without_warnings(tmp_path):
    res = subprocess.run([_mcs(), "-target:library", "-warn:4", f"-out:{tmp_path / 'client.dll'}", str(CLIENT_CS),
                          str(UNITY_STUB)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "EmotrackClient.cs" not in res.stdout + res.stderr, res.stdout + res.stderr  # no warnings in the example


def test_unity_message_classes_mirror_the_server(stream):
    _, _, first = stream
    classes = _cs_classes(CLIENT_CS.read_text())
    emotion, hello, marker = (json.loads(first[k]) for k in ("emotion", "hello", "marker"))
    # With several streams in one run every hop also names its stream; the client has that field too.
    several = json.loads(to_json(HopMessage(
        seq=emotion["seq"], stream_time=emotion["stream_time"], wall_time=emotion["wall_time"],
        valence=emotion["valence"], arousal=emotion["arousal"], valence_raw=emotion["raw"]["valence"],
        arousal_raw=emotion["raw"]["arousal"], quadrant=emotion["quadrant"], model=emotion["model"],
        latency_ms=emotion["latency_ms"], dropped_samples=emotion["dropped_samples"],
        confidence=emotion["confidence"], active=emotion["active"], stream="ch1")))
    assert [k for k in several if k != "stream"] == list(emotion)
    _assert_mirrors(classes["EmotionMessage"], several, "emotion")
    _assert_mirrors(classes["RawValues"], emotion["raw"], "emotion.raw")
    _assert_mirrors(classes["LatencyMs"], emotion["latency_ms"], "emotion.latency_ms")
    _assert_mirrors(classes["MarkerMessage"], marker, "marker")
    # hello: every scalar field (session is an object, or null without --session; a client does not need it)
    _assert_mirrors(classes["HelloMessage"], {k: v for k, v in hello.items() if k != "session"}, "hello")
    assert classes["Envelope"] == {"type": "string", "version": "int"}
    names = re.search(r"QuadrantNames =\s*\{(.*?)\}", CLIENT_CS.read_text(), re.S).group(1)
    assert re.findall(r'"([^"]+)"', names) == [QUADRANT_NAMES[q] for q in sorted(QUADRANT_NAMES)]


def test_unity_client_reads_a_real_stream(stream, tmp_path):
    """Compiled with the stand-in UnityEngine and run under Mono against the real server: the same values as a
    Python client got for the same hops."""
    run, _, _ = stream
    if shutil.which("mono") is None:
        pytest.skip("mono not found: needed to run the compiled Unity example (apt-get install mono-runtime)")
    check = tmp_path / "Check.cs"
    check.write_text(CHECK_CS)
    exe = tmp_path / "check.exe"
    res = subprocess.run([_mcs(), f"-out:{exe}", str(CLIENT_CS), str(UNITY_STUB), str(check)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    proc = subprocess.Popen(["mono", str(exe), str(run.port), "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    python_side = asyncio.run(_collect(run.port, emotions=8))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    ours = {m["seq"]: m for m in map(json.loads, python_side) if m["type"] == "emotion"}
    rows = [line.split()[1:] for line in out.splitlines() if line.startswith("emotion ")]
    common = [r for r in rows if int(r[0]) in ours]
    assert common, (out, sorted(ours))
    for seq, t, v, a, rv, ra, q, active, conf, total, dropped in common:
        m = ours[int(seq)]
        expected = (m["stream_time"], m["valence"], m["arousal"], m["raw"]["valence"], m["raw"]["arousal"],
                    m["confidence"], m["latency_ms"]["total"])
        assert [float(x) for x in (t, v, a, rv, ra, conf, total)] == pytest.approx(expected, abs=1e-5)
        assert (int(q), bool(int(active)), int(dropped)) == (m["quadrant"], m["active"], m["dropped_samples"])
    assert f"hello {json.loads(stream[2]['hello'])['model']}" in out, out
    assert re.search(r"^state 1 (" + "|".join(map(re.escape, QUADRANT_NAMES.values())) + ")$", out, re.M), out


# -- TouchDesigner --------------------------------------------------------------------------------------------------

class FakeTable:
    """The part of TouchDesigner's tableDAT the callbacks use: ``row``, ``appendRow``, ``[name, col]``, ``numRows``."""

    def __init__(self) -> None:
        self.rows: list[list] = []

    @property
    def numRows(self) -> int:  # noqa: N802 (TouchDesigner's name)
        return len(self.rows)

    def row(self, name):
        return next((r for r in self.rows if r and str(r[0]) == name), None)

    def appendRow(self, cells) -> None:  # noqa: N802
        self.rows.append(list(cells))

    def __setitem__(self, key, value) -> None:
        name, col = key
        self.row(name)[col] = value

    def as_dict(self) -> dict:
        return {r[0]: r[1] for r in self.rows}


def _td_module():
    path = EXAMPLES / "touchdesigner" / "websocket_callbacks.py"
    source = path.read_text()
    tree = ast.parse(source, str(path))
    functions = {n.name: [a.arg for a in n.args.args] for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert functions["onReceiveText"] == ["dat", "rowIndex", "message"]
    for name in ("onConnect", "onDisconnect", "onReceiveBinary", "onReceivePing", "onReceivePong"):
        assert name in functions, name
    tables = {"emotrack_values": FakeTable(), "emotrack_info": FakeTable(), "emotrack_markers": FakeTable()}
    printed: list[str] = []
    namespace = {"op": tables.get, "debug": printed.append, "__name__": "websocket_callbacks"}
    exec(compile(tree, str(path), "exec"), namespace)  # noqa: S102 (our own example file)
    return namespace, tables, printed


def test_touchdesigner_script_handles_every_message_the_server_sends(stream):
    _, texts, first = stream
    module, tables, printed = _td_module()
    assert set(module["HANDLERS"]) == set(WANTED)
    for i, text in enumerate(texts):
        module["onReceiveText"](None, i, text)
    assert not printed, printed  # nothing fell through as unknown
    last = [m for m in map(json.loads, texts) if m["type"] == "emotion"][-1]
    values = tables["emotrack_values"].as_dict()
    assert list(values) == list(module["VALUE_ROWS"])
    assert values == {"valence": last["valence"], "arousal": last["arousal"], "valence_raw": last["raw"]["valence"],
                      "arousal_raw": last["raw"]["arousal"], "quadrant": last["quadrant"],
                      "active": int(last["active"]), "confidence": last["confidence"], "seq": last["seq"],
                      "latency_ms": last["latency_ms"]["total"], "dropped_samples": last["dropped_samples"]}
    hello = json.loads(first["hello"])
    assert tables["emotrack_info"].as_dict()["model"] == hello["model"]
    marker = json.loads(first["marker"])
    assert tables["emotrack_markers"].rows[0] == ["id", "stream_time", "source", "label"]
    assert [marker["id"], marker["stream_time"], marker["source"], "chorus"] in tables["emotrack_markers"].rows
    module["onReceiveText"](None, 0, '{"type":"pong","version":2}')
    module["onReceiveText"](None, 0, "not json")
    assert len(printed) == 2


def test_touchdesigner_script_follows_one_stream_of_several(stream):
    _, _, first = stream
    module, tables, _ = _td_module()
    hop = json.loads(first["emotion"])
    for name, valence in (("ch1", 0.25), ("ch2", -0.75), ("ch1", 0.5)):
        module["onReceiveText"](None, 0, json.dumps({"type": "emotion", "stream": name, **hop, "valence": valence}))
    assert tables["emotrack_values"].as_dict()["valence"] == 0.5  # the first stream heard, never mixed


# -- the README's quoted messages -------------------------------------------------------------------------------------

def _readme_messages() -> dict[str, dict]:
    """The first message of each type in the README's ```json block that quotes the hello."""
    text = (REPO / "README.md").read_text()
    blocks = [b for b in re.findall(r"```json\n(.*?)```", text, re.S) if '"type":"hello"' in b]
    assert len(blocks) == 1, "one README block quotes the hello message"
    decoder, block, found, i = json.JSONDecoder(), blocks[0], {}, 0
    while i < len(block):
        if block[i].isspace():
            i += 1
            continue
        message, i = decoder.raw_decode(block, i)
        found.setdefault(message["type"], message)
    return found


def test_readme_hello_is_what_the_server_sends(stream):
    _, _, first = stream
    quoted, real = _readme_messages()["hello"], json.loads(first["hello"])
    timing = {"started", "run_id"}  # differ on every run
    assert list(quoted) == list(real)
    for key in real.keys() - timing:
        assert quoted[key] == real[key], f"README hello {key}: {quoted[key]!r}, the server sends {real[key]!r}"
    assert isinstance(quoted["started"], float) and re.fullmatch(r"[0-9a-f]{12}", quoted["run_id"])
    # character for character, timing values aside: the server writes compact JSON in this key order
    assert json.dumps(quoted | {k: real[k] for k in timing}, separators=(",", ":")) == first["hello"]


def test_readme_emotion_has_the_server_fields(stream):
    _, _, first = stream
    quoted, real = _readme_messages()["emotion"], json.loads(first["emotion"])
    assert list(quoted) == list(real)
    for key in ("raw", "latency_ms"):
        assert list(quoted[key]) == list(real[key]), key
    for key in ("type", "version", "model"):
        assert quoted[key] == real[key], key


def test_example_folders_have_readmes():
    for folder in ("max", "unity", "touchdesigner"):
        readme = EXAMPLES / folder / "README.md"
        assert readme.is_file() and len(readme.read_text()) > 300, readme
    text = (EXAMPLES / "osc-receivers.md").read_text()
    for path in ("examples/max/emotrack.maxpat", "examples/touchdesigner/", "examples/unity/EmotrackClient.cs"):
        assert path in text, path
    assert "2 Hz" in text and "step" in text
