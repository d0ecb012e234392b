"""Property-based fuzzing of emotrack's three inputs from outside: WebSocket client messages, config files and
model metadata. Each property says what any input may do (a strict-JSON reply, a ``ConfigError``, a
``ModelError``) and nothing else: a stray ``TypeError`` or ``OverflowError`` is a traceback a user would see.

Examples are derandomized so CI sees the same inputs every run; the strategies still reach the bad corners
(huge exponents, NaN, deep nesting, wrong types, wrong lengths), and each property fails if one of them gets
through as another exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emotrack.errors import ConfigError, ModelError
from emotrack.realtime.websocket import MAX_COMMAND_BYTES, EmotionServer
from tests.conftest import REPO

REPLY_TYPES = {"pong", "error", "marker"}
HELLO = json.dumps({"type": "hello", "version": 1})
FAST = settings(max_examples=300, deadline=None, derandomize=True)
"""For pure functions: many examples, no per-example deadline (the machine is shared), same inputs every run."""
SLOW = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
"""For examples that cost a real connection round trip or a model load."""


def _no_constants(name: str) -> Any:
    raise AssertionError(f"reply holds {name}, which is not JSON")


def strict_json(text: str) -> Any:
    """Parse ``text`` as a browser's ``JSON.parse`` would: NaN, Infinity and out-of-range numbers fail."""
    def finite(s: str) -> float:
        value = float(s)
        assert math.isfinite(value), f"reply holds {s}, which JSON.parse turns into Infinity"
        return value

    return json.loads(text, parse_constant=_no_constants, parse_float=finite)


# -- WebSocket client messages ---------------------------------------------------------------------

JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=12)
NUMBER_LITERALS = st.sampled_from(
    ["1e999", "-1e999", "1e-999", "NaN", "-NaN", "Infinity", "-Infinity", "nan", "inf", "1" * 5000, "-0", "0e0",
     "1E400", "123456789012345678901234567890", ".5", "01", "1.", "0x10", "+1"]
)


@st.composite
def nested(draw) -> str:
    """Deep nesting, balanced or not, up to the server's message size (Python's parser recurses on it)."""
    open_, close = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    depth = draw(st.integers(1, (MAX_COMMAND_BYTES - 32) // (len(open_) + len(close))))
    tail = close * depth if draw(st.booleans()) else close * draw(st.integers(0, depth))
    return open_ * depth + draw(st.sampled_from(["1", "1e999", "NaN", "{}", '{"type":"ping"}'])) + tail


@st.composite
def commands(draw) -> str:
    """JSON objects that look like commands: a known or unknown ``type`` and fuzzed ``id``/other fields."""
    obj = draw(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3))
    if draw(st.booleans()):
        obj["type"] = draw(st.sampled_from(["ping", "marker", "pong", "hello", "", "PING"]) | JSON_VALUES)
    if draw(st.booleans()):
        obj["id"] = draw(JSON_VALUES | NUMBER_LITERALS.map(lambda s: _Raw(s)))
    return _encode(obj)


class _Raw(str):
    """A number literal spliced into the JSON text as is (``1e999``, ``NaN``), not as a string."""


def _encode(value: Any) -> str:
    """JSON text of ``value``, NaN/Infinity written as Python does, :class:`_Raw` literals spliced in."""
    raws: list[str] = []

    def mark(v: Any) -> Any:
        if isinstance(v, _Raw):
            raws.append(str(v))
            return f"\x00raw{len(raws) - 1}\x00"
        if isinstance(v, dict):
            return {k: mark(x) for k, x in v.items()}
        if isinstance(v, list):
            return [mark(x) for x in v]
        return v

    text = json.dumps(mark(value))
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\x00raw{i}\x00"), raw)
    return text


MESSAGES = (
    st.text(max_size=200) | st.binary(max_size=200) | NUMBER_LITERALS | nested()
    | JSON_VALUES.map(json.dumps) | commands()
)
"""Any message a client could send, text or binary."""


def _fits(message: str | bytes) -> bool:
    return len(message.encode() if isinstance(message, str) else message) <= MAX_COMMAND_BYTES


ON_THE_WIRE = MESSAGES.filter(_fits)
"""Messages within the server's size limit (bigger ones close the connection with 1009, by design)."""


def _server() -> EmotionServer:
    """Only the constructor arguments that will stay: host, port, queue size and hello."""
    return EmotionServer("127.0.0.1", 0, queue_size=8, hello=HELLO)


def check_reply(message: str | bytes, reply: str) -> dict:
    """The reply is strict JSON, an object of a known type; a ping made of strict JSON gets a pong with its id."""
    answer = strict_json(reply)
    assert isinstance(answer, dict) and answer.get("type") in REPLY_TYPES, answer
    command = None
    if isinstance(message, str):
        with contextlib.suppress(ValueError, AssertionError, RecursionError):
            command = json.loads(message, parse_constant=_no_constants)
    if isinstance(command, dict) and command.get("type") == "ping":
        try:
            json.dumps(command, allow_nan=False)
        except ValueError:
            command = None  # holds NaN or an infinity: an error reply is right
        else:
            assert answer["type"] == "pong", (message, answer)
            assert answer.get("id") == command.get("id"), (message, answer)
    return answer


@FAST
@given(message=MESSAGES)
def test_any_client_message_gets_a_strict_json_reply(message):
    check_reply(message, _server()._answer(message))


@pytest.mark.parametrize("message", ['{"type":"ping","id":1e999}', '{"type":"ping","id":NaN}',
                                     '{"type":"ping","id":-Infinity}', "[" * 2000 + "]" * 2000])
def test_known_bad_pings_get_an_error(message):
    assert check_reply(message, _server()._answer(message))["type"] == "error"


class ServerThread:
    """A real :class:`EmotionServer` on its own event loop thread, for a synchronous websockets client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = _server()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def test_a_real_client_sending_fuzz_stays_connected():
    """Hundreds of fuzzed messages over one connection: every reply strict JSON, then a ping still gets a pong."""
    from websockets.sync.client import connect

    sent = []
    with ServerThread() as srv, connect(f"ws://127.0.0.1:{srv.server.port}", open_timeout=10) as ws:
        assert strict_json(ws.recv(timeout=10))["type"] == "hello"

        @settings(SLOW, max_examples=40)
        @given(batch=st.lists(ON_THE_WIRE, min_size=10, max_size=15))
        def exchange(batch):
            for message in batch:
                ws.send(message)
                check_reply(message, ws.recv(timeout=10))
                sent.append(message)

        exchange()
        ws.send('{"type": "ping", "id": "last"}')
        while (answer := strict_json(ws.recv(timeout=10)))["type"] != "pong":  # a marker may echo once more
            assert answer["type"] in REPLY_TYPES, answer
        assert answer["id"] == "last"
        assert srv.server.clients == 1
    assert len(sent) >= 200, len(sent)


# -- config files ----------------------------------------------------------------------------------


def toml_key(key: str) -> str:
    return toml_string(key)


def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes, plus DEL, which TOML (unlike JSON) requires escaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    """One TOML value (inline tables and arrays for containers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_lines(table: dict[str, Any]) -> str:
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in table.items())


def _run_keys() -> list[str]:
    from emotrack.cli import RUN_DESTS

    return sorted(RUN_DESTS)


TOML_SCALARS = (st.booleans() | st.integers() | st.integers(min_value=-(10**400), max_value=10**400)
                | st.floats() | st.text(max_size=12))
TOML_VALUES = st.recursive(TOML_SCALARS, lambda kids: st.lists(kids, max_size=3)
                           | st.dictionaries(st.text(max_size=6), kids, max_size=3), max_leaves=6)
WORDS = st.sampled_from(
    ["low", "high", "0.05", "ema", "one-euro", "triangle", "none", "mca", "cpu", "cuda", "0..1", "-1..1",
     "127.0.0.1:9000", "[::1]:9000", "localhost", ":9000", "host:0", "/emotrack", "", "0.0.0.0", "\x00", "a\x00b"]
) | st.text(max_size=12) | st.sampled_from(["\x00", "a\x00b", "\x00.csv"])
BY_TYPE = {
    str: WORDS,
    int: st.integers(-5, 70_000) | st.sampled_from([10**400, -(10**30), 2**63, 0, -1]),
    float: st.floats(-1e3, 1e10) | st.sampled_from([1e308, -0.0, 1e-300]) | st.floats(),
    bool: st.booleans(),
    list: st.lists(st.sampled_from(["127.0.0.1:9000", "nohost", "h:70000", "[::1]:1", "null", "\x00"]) | WORDS,
                   max_size=3),
    dict: st.dictionaries(st.sampled_from(["attack", "release", "taps", "min_cutoff", "beta", "hop_s", "zz"]),
                          st.integers(-10, 10**12) | st.floats() | st.sampled_from(["2", "fast", ""]), max_size=3),
}
"""Values of one TOML type each, tuned to the options' edges (huge, negative, NUL, odd host names)."""


def option_values(key: str) -> st.SearchStrategy:
    """Mostly a value of a type ``key`` accepts, so fuzzing gets past the type checks to the ranges; else anything."""
    from emotrack.options import RUN_TYPES

    typed = st.one_of([BY_TYPE[t] for t in RUN_TYPES.get(key, ())] or [TOML_VALUES])
    return st.one_of(typed, typed, typed, TOML_VALUES)


@st.composite
def run_tables(draw) -> dict[str, Any]:
    """A ``[run]`` table: known keys (``-`` or ``_`` spelling) with plausible or random values, maybe unknown keys."""
    from emotrack.options import RANGES

    edges = st.sampled_from([*RANGES, *OUTPUT_KEYS])  # half the keys: those with ranges or paths to check
    keys = draw(st.lists(st.sampled_from(_run_keys()) | edges, max_size=5, unique=True))
    table = {}
    for key in keys:
        name = key.replace("_", "-") if draw(st.booleans()) else key
        table[name] = draw(option_values(key))
    if draw(st.integers(0, 9)) == 0:
        table.update(draw(st.dictionaries(st.text(min_size=1, max_size=8), TOML_VALUES, max_size=2)))
    return table


LAYOUTS = ("table", "table", "table", "bare", "other-table", "truncated", "run-value", "bytes")


@st.composite
def config_documents(draw) -> tuple[str, dict[str, Any], Any]:
    """A config file as ``(layout, [run] table, extra)``: a ``[run]`` table, bare top-level keys, ``run = <not a
    table>``, another table first, a truncated file or raw bytes (see :func:`render`)."""
    layout = draw(st.sampled_from(LAYOUTS))
    extra = {"run-value": TOML_VALUES, "bytes": st.binary(max_size=200), "truncated": st.floats(0, 1)}.get(layout)
    return layout, draw(run_tables()), None if extra is None else draw(extra)


def render(doc: tuple[str, dict[str, Any], Any], root: Path) -> bytes:
    """The file's bytes, its output paths kept under ``root``."""
    layout, table, extra = doc
    lines = toml_lines(contained(table, root))
    if layout == "bytes":
        return extra
    if layout == "run-value":
        return f"run = {toml_value(extra)}\n".encode()
    text = {"bare": lines, "other-table": "[other]\nx = 1\n[run]\n" + lines}.get(layout, "[run]\n" + lines)
    return (text[: round(len(text) * extra)] if layout == "truncated" else text).encode()


OUTPUT_KEYS = ("csv", "session")
"""Options that create files or folders: their fuzzed names are kept inside the test's folder."""


def contained(table: dict[str, Any], root: Path) -> dict[str, Any]:
    """``table`` with each output path made a plain name under ``root`` (NUL and odd characters kept)."""
    out = dict(table)
    for key, value in table.items():
        if key.replace("-", "_") in OUTPUT_KEYS and isinstance(value, str):
            out[key] = str(root / ("out_" + value.replace("/", "_").replace("\\", "_")))
    return out


def _config_error_or_ok(call) -> Any:
    try:
        return call()
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), repr(exc)  # a one-line message
        return None


@FAST
@given(doc=config_documents())
@example(doc=("run-value", {}, {"0": False, "\n": False}))  # once found: a key holding a newline, a 2-line error
def test_config_files_load_or_fail_with_a_config_error(tmp_path_factory, doc):
    """``load_config`` then ``check_run``: a ``ConfigError`` or values whose ``csv`` really opens for writing
    (the check runs before the model loads so that the open after it cannot fail)."""
    from emotrack.cli import load_config
    from emotrack.options import check_run

    root = tmp_path_factory.mktemp("cfg")
    path = root / "run.toml"
    path.write_bytes(render(doc, root))

    def load_and_check():
        values = load_config(path)
        check_run(values)
        return values

    values = _config_error_or_ok(load_and_check)
    if values is not None and values.get("csv") is not None:
        with open(values["csv"], "w"):
            pass


@pytest.mark.parametrize("text", ["[run]\nws_port = 1" + "0" * 400, "[run]\nthreads = -" + "9" * 30,
                                  '[run]\ncsv = "a\\u0000b.csv"', "[run]\nduration = nan", "run = 5",
                                  '[run]\nsmoothing_params = "fast"', "[run]\nosc = 9000"])
def test_known_bad_config_values_are_config_errors(tmp_path, text):
    from emotrack.cli import load_config
    from emotrack.options import check_run

    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        check_run(load_config(path))


@settings(max_examples=5, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(table=run_tables(), with_csv=st.booleans())
def test_run_with_a_fuzzed_config_exits_0_or_in_one_line(tmp_path, example_audio, table, with_csv):
    """The real CLI: start-up with the fuzzed file ends in exit 0 or one ``emotrack: error:`` line, no traceback."""
    table = {k: v for k, v in table.items() if k.replace("-", "_") != "csv"}
    if with_csv:
        table["csv"] = "fuzz.csv"
    config = tmp_path / "run.toml"
    config.write_bytes(render(("table", table, None), tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "emotrack", "run", "--config", str(config), "--no-osc", "--no-ws", "--quiet",
         "--duration", "0.1", "--file", str(example_audio)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,  # relative paths land in the test's folder
        env={**os.environ, "PYTHONPATH": str(REPO)},  # this checkout's emotrack, whatever the cwd
    )
    assert "Traceback" not in proc.stderr, (table, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("emotrack: error:")]
    if proc.returncode == 0:
        assert not errors, proc.stderr
    else:
        assert len(errors) == 1, (table, proc.returncode, proc.stderr)


# -- model metadata --------------------------------------------------------------------------------


def _bundled_props(name: str) -> dict[str, str]:
    import onnxruntime as ort

    from emotrack.inference import bundled_models

    session = ort.InferenceSession(str(bundled_models()[name]), providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)


CARDS = {name: _bundled_props(name) for name in ("mca", "mca-musicnn")}
NASTY = st.sampled_from(
    [0, -5, -1, 1, 0.5, 1e308, -1e308, math.inf, -math.inf, math.nan, 10**8, 10**12, 2**64, 10**400, "", "x",
     "16000", True, False, None, [], {}, [1.0], [0.0, 0.0], [1, 2, 3], {"a": 1}, {"name": "logmel"}]
) | JSON_VALUES
"""Replacement values: zero, negative, huge, non-finite, wrong types, wrong-length lists."""


@st.composite
def mutated(draw, value: Any, depth: int = 0) -> Any:
    """``value`` with one spot inside it replaced, deleted or resized (a list made shorter or longer)."""
    if isinstance(value, dict) and value and depth < 4 and draw(st.integers(0, 3)):
        key = draw(st.sampled_from(sorted(value)))
        out = dict(value)
        if draw(st.integers(0, 4)) == 0:
            del out[key]
        else:
            out[key] = draw(mutated(value[key], depth + 1))
        return out
    if isinstance(value, list) and value and depth < 4 and draw(st.integers(0, 2)):
        action = draw(st.sampled_from(["item", "shorter", "longer"]))
        out = list(value)
        if action == "shorter":
            return out[: draw(st.integers(0, len(out) - 1))]
        if action == "longer":
            return out + [out[-1]] * draw(st.integers(1, 3))
        i = draw(st.integers(0, len(out) - 1))
        out[i] = draw(mutated(out[i], depth + 1))
        return out
    return draw(NASTY)


@st.composite
def metadata(draw, bases: tuple[str, ...] = tuple(CARDS)) -> dict[str, str]:
    """A bundled model's real metadata with one to three keys deleted, replaced by garbage or mutated inside."""
    props = dict(CARDS[draw(st.sampled_from(bases))])
    for _ in range(draw(st.integers(1, 3))):
        sized = sorted(k for k in props if k.split(".")[-1] in ("frontend", "context", "normalization", "outputs"))
        key = draw(st.sampled_from(sorted(props)) | st.sampled_from(sized or sorted(props)))  # those that size things
        action = draw(st.sampled_from(["mutate", "mutate", "mutate", "delete", "not-json", "add"]))
        if action == "delete":
            del props[key]
        elif action == "not-json":
            props[key] = draw(st.sampled_from(["", "{", "NaN", "[1,", "null", "\x00"]))
        elif action == "add":
            props["emotrack." + draw(st.text(max_size=6))] = json.dumps(draw(JSON_VALUES))
        else:
            try:
                value = json.loads(props[key])
            except ValueError:  # made not-JSON by an earlier round
                value = None
            props[key] = json.dumps(draw(mutated(value)))
        if not props:
            break
    return props


@contextlib.contextmanager
def capped_memory(extra: int = 4 << 30):
    """Cap this process's address space ``extra`` bytes above its current size while fuzzing front-end sizes, so
    a check that lets ``n_fft = 1e8`` through fails the test with a ``MemoryError`` instead of paging the machine
    to death. A no-op where ``resource`` or ``/proc`` is missing."""
    try:
        import resource

        status = Path("/proc/self/status").read_text()
        size = int(next(line for line in status.splitlines() if line.startswith("VmSize:")).split()[1]) * 1024
        saved = resource.getrlimit(resource.RLIMIT_AS)
        cap = size + extra if saved[1] == resource.RLIM_INFINITY else min(size + extra, saved[1])
        resource.setrlimit(resource.RLIMIT_AS, (cap, saved[1]))
    except (ImportError, OSError, StopIteration, ValueError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, saved)


def model_error_or_ok(call) -> Any:
    try:
        return call()
    except ModelError as exc:
        assert str(exc) and "\n" not in str(exc), repr(exc)  # a one-line message
        return None


@st.composite
def frontend_metadata(draw) -> dict[str, str]:
    """A valid card whose front-end parameters alone are fuzzed (elsewhere, most mutations stop at the card):
    one to three of them set to edge numbers or wrong types, sometimes under another front end's name."""
    from emotrack.frontends import FRONTENDS

    props = dict(CARDS[draw(st.sampled_from(sorted(CARDS)))])
    frontend = json.loads(props["emotrack.frontend"])
    params = dict(frontend["params"])
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(params)) | st.text(max_size=6))
        params[key] = draw(st.integers(-10, 10**9) | st.floats(-1e9, 1e9) | NASTY)
    if draw(st.integers(0, 4)) == 0:
        frontend["name"] = draw(st.sampled_from(sorted(FRONTENDS)))
    props["emotrack.frontend"] = json.dumps({**frontend, "params": params})
    return props


@FAST
@given(props=metadata() | frontend_metadata())
def test_fuzzed_metadata_passes_or_fails_with_a_model_error(props):
    """The card passes or is a ``ModelError``; one that passes is fit to show (``emotrack models``) and to send
    (the hello message), and its normaliser builds."""
    from emotrack.export.metadata import ModelCard
    from emotrack.frontends import Normalizer

    card = model_error_or_ok(lambda: ModelCard.from_properties(props, source="fuzz.onnx"))
    if card is None:
        return
    card.summary()  # what `emotrack models` prints must not fail on a card that passed
    hello = {"hop_s": card.hop_s, "sample_rate": card.sample_rate, "windows_s": card.windows_s}
    json.dumps(hello, allow_nan=False)  # these reach WebSocket clients in the hello message
    model_error_or_ok(lambda: Normalizer.from_dict(card.normalization))


def test_a_card_that_passes_builds_its_front_end_or_fails_with_a_model_error():
    """What ``ModelRunner`` builds from a card that passed: its front end, from the fuzzed parameters."""
    from emotrack.export.metadata import ModelCard
    from emotrack.frontends import make_frontend

    @settings(FAST, report_multiple_bugs=False)
    @given(props=frontend_metadata())
    def build(props):  # an inner function: no Hypothesis patch file for the expected failure
        card = model_error_or_ok(lambda: ModelCard.from_properties(props, source="fuzz.onnx"))
        if card is not None:
            with capped_memory():
                model_error_or_ok(lambda: make_frontend(card.frontend["name"], card.frontend.get("params")))

    build()


@pytest.mark.parametrize("key, value", [("context", '{"frames": Infinity, "windows_s": [2.5], "hop_s": 0.5}'),
                                        ("context", '{"frames": 20, "windows_s": [2.5], "hop_s": NaN}'),
                                        ("context", '{"frames": 20, "windows_s": [-1, NaN], "hop_s": 0.5}'),
                                        ("context", '{"frames": 100000000, "windows_s": [2.5], "hop_s": 0.5}'),
                                        ("training", "0"), ("outputs", '"va"'), ("name", "7"),
                                        ("normalization", '{"mean": 0, "std": 0}')])
def test_known_bad_metadata_is_a_model_error(key, value):
    from emotrack.export.metadata import ModelCard

    with pytest.raises(ModelError):
        ModelCard.from_properties({**CARDS["mca"], "emotrack." + key: value}, source="bad.onnx")


def test_the_bundled_cards_pass():
    """The mutations start from cards that are valid, so every failure above comes from a mutation."""
    from emotrack.export.metadata import ModelCard

    for name, props in CARDS.items():
        assert ModelCard.from_properties(props, source=name).name == name


@pytest.fixture(scope="module")
def mca_model():
    onnx = pytest.importorskip("onnx", reason="writing .onnx files needs the train extra (onnx)")
    from emotrack.inference import bundled_models

    return onnx, onnx.load(str(bundled_models()["mca"]))


def test_a_real_onnx_file_with_fuzzed_metadata_loads_or_fails_with_a_model_error(tmp_path, mca_model):
    """``ModelRunner`` on a copy of the bundled ``mca.onnx`` with fuzzed ``metadata_props``: the whole load
    (card, front end from its params, normaliser, graph checks, warm-up) passes or raises ``ModelError``."""
    from emotrack.inference import ModelRunner

    onnx, proto = mca_model

    @SLOW
    @given(props=metadata(bases=("mca",)))
    def load(props):
        model = onnx.ModelProto()
        model.CopyFrom(proto)
        del model.metadata_props[:]
        for key, value in props.items():
            model.metadata_props.add(key=key, value=value)
        path = tmp_path / "fuzz.onnx"
        path.write_bytes(model.SerializeToString())
        with capped_memory():
            model_error_or_ok(lambda: ModelRunner(path, provider="cpu"))

    load()
