"""`emotrack run --csv` keeps its rows: SIGTERM and SIGHUP shut down cleanly, SIGKILL loses at most ~1 s, and a
full disk is counted while tracking and the WebSocket stream go on."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import (
    REPO,
    assert_one_line_error,
    csv_data_rows,
    default_stop_signals,
    free_port,
    wait_csv_rows,
    ws_connect,
)


def _start(audio: Path, csv: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emotrack", "run", "--file", str(audio), "--quiet", "--no-osc", "--ws-port", str(port),
         "--csv", str(csv), *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_stop_signals,
    )
    return proc, port


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_close_the_csv_with_every_row(example_audio, tmp_path, sig):
    csv = tmp_path / "run.csv"
    proc, _ = _start(example_audio, csv)
    try:
        wait_csv_rows(proc, csv, 4)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    summary = next(line for line in err.splitlines() if line.startswith("emotrack: ") and " hops" in line)
    hops = int(summary.split()[1])
    assert hops >= 4 and csv_data_rows(csv) == hops, (summary, csv_data_rows(csv))


def test_sigkill_loses_at_most_a_second_of_rows(example_audio, tmp_path):
    """Rows on disk after SIGKILL cover every hop the live stream had sent, but the last two (1 s)."""
    csv = tmp_path / "run.csv"
    proc, port = _start(example_audio, csv)

    async def watch() -> int:
        last = -1
        async with await ws_connect(port) as ws:
            async for text in ws:
                msg = json.loads(text)
                if msg["type"] == "emotion":
                    last = msg["seq"]
                if last >= 9:
                    os.kill(proc.pid, signal.SIGKILL)
                    return last
        return last

    try:
        last_seen = asyncio.run(asyncio.wait_for(watch(), 90))
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert csv_data_rows(csv) >= last_seen + 1 - 2, (csv_data_rows(csv), last_seen)


@pytest.fixture
def tiny_disk(tmpfs):
    """A 4 KiB tmpfs: full from the first write."""
    return tmpfs("full", "size=4k")


def test_full_disk_is_counted_and_tracking_goes_on(example_audio, tiny_disk):
    csv = tiny_disk / "run.csv"
    proc, _ = _start(example_audio, csv, "--fast")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    summary = next(line for line in err.splitlines() if line.startswith("emotrack: ") and " hops" in line)
    assert int(summary.split()[1]) == 130  # every hop of the 65 s example was tracked
    assert "CSV writes failed" in summary
    assert sum("cannot write" in line for line in err.splitlines()) == 1  # reported once, not per row



def test_analyze_on_a_full_disk_fails_in_one_line_and_leaves_no_part_file(cli, example_audio, tiny_disk):
    res = cli("analyze", str(example_audio), "-o", str(tiny_disk), "--quiet", "--jobs", "1")
    assert_one_line_error(res, "cannot write", "No space left on device")
    assert list(tiny_disk.iterdir()) == []  # neither a CSV nor a .part
