"""Shared fixtures: the bundled example recording, the shared data folder and a CLI runner."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from emotrack.assets import EXAMPLE_AUDIO
from emotrack.stopsignals import STOP_SIGNALS

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def example_audio() -> Path:
    return EXAMPLE_AUDIO


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not DATA_ROOT.is_dir():
        pytest.skip("../shared/data not found: real-data tests need the shared data sets beside the repo")
    return DATA_ROOT


@pytest.fixture(scope="session")
def tiny_4q_clips(data_root: Path) -> list:
    """Eight real 4Q clips, two per quadrant: enough to train and evaluate for a few seconds."""
    if not (data_root / "4q" / "panda_dataset_taffc_metadata.csv").exists():
        pytest.skip(f"4Q development data not found at {data_root / '4q'}")
    from emotrack.training.examples import load_clips

    return load_clips(data_root, ["4q"], limit=8, seed=0)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> CliResult:
    """Run ``python -m emotrack ARGS`` in a subprocess, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "emotrack", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    """A user error: non-zero exit, exactly one ``emotrack: error:`` line, no traceback."""
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in lines if line.startswith("emotrack: error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment.lower() in errors[0].lower(), errors[0]


def default_stop_signals() -> None:
    """``preexec_fn`` for a child that must take the stop signals as one started from a terminal would: a shell
    script's background job (``pytest ... &``) ignores SIGINT, ``nohup pytest`` ignores SIGHUP, and children inherit
    that (emotrack keeps a signal ignored on entry ignored), so a signal test would test the shell, not emotrack."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


def csv_data_rows(path: Path) -> int:
    """Data rows in a run's CSV so far (0 before the file or its header exists)."""
    if not path.exists():
        return 0
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return max(0, len(lines) - 1)


def wait_csv_rows(proc: subprocess.Popen, csv: Path, n: int, timeout: float = 60) -> None:
    """Wait until the running ``proc`` has written ``n`` rows to ``csv``; fail if it ends or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while csv_data_rows(csv) < n:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"fewer than {n} rows after {timeout} s"
        time.sleep(0.1)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port nothing listens on now (TCP by default, ``socket.SOCK_DGRAM`` for OSC)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def ws_connect(port: int, timeout: float = 30.0):
    """Connect to ``ws://127.0.0.1:port``, retrying while the server under test is still starting."""
    import websockets

    deadline = time.monotonic() + timeout
    while True:
        try:
            return await websockets.connect(f"ws://127.0.0.1:{port}")
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def ws_messages(port: int) -> list[dict]:
    """Every JSON message of one client, from connecting until the server closes the stream."""
    import websockets

    messages = []
    async with await ws_connect(port) as ws:
        try:
            async for text in ws:
                messages.append(json.loads(text))
        except websockets.ConnectionClosed:
            pass
    return messages


@pytest.fixture
def live(example_audio):
    """Start ``emotrack run`` on the bundled example (see :class:`liverun.LiveRun`); stopped when the test ends."""
    from liverun import LiveRun

    runs: list[LiveRun] = []

    def start(*args: str, **kwargs) -> LiveRun:
        runs.append(LiveRun(example_audio, *args, **kwargs))
        return runs[-1]

    yield start
    for run in runs:
        run.close()


def _mount_tmpfs(where: Path, options: str) -> Path:
    if os.geteuid() != 0:
        pytest.skip("a full or read-only disk is simulated with a tmpfs, which needs root")
    where.mkdir(exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    return where


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(name, options)`` mounts a tmpfs (``"size=4k"``: a full disk; ``"ro"``) under tmp_path; root only."""
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        mounted.append(_mount_tmpfs(tmp_path / name, options))
        return mounted[-1]

    yield mount
    for m in reversed(mounted):
        if subprocess.run(["umount", str(m)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(m)], check=False)  # still busy: detach it anyway
