"""The "no music" state: silence, room noise and speech are inactive; music is active.

Through ``emotrack analyze`` (CSV) and through the live WebSocket stream of ``emotrack run``, with the bundled
default model and audio made here (numpy noise, espeak-ng speech), none of it seen in training.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emotrack.audio import rms_dbfs
from emotrack.csvout import read_csv
from emotrack.data.nonmusic import colored_noise, scale_to_dbfs, speech
from emotrack.realtime.activity import FLOOR_DBFS, OFF, ON, ActivityGate, level_factor
from tests.conftest import REPO, free_port, ws_messages

SR = 16000
SPEECH_TEXT = (
    "Hello, and welcome back. Before we start the next piece, I would like you to sit comfortably and take a "
    "slow breath. Notice how your shoulders feel. When you are ready, tell me one word that describes your "
    "morning, and then we will begin."
)


def _speech() -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (Debian: apt install espeak-ng)")
    return scale_to_dbfs(speech(SPEECH_TEXT, SR, voice="en-us", wpm=150), -20.0)


@pytest.fixture(scope="module")
def nonmusic_files(tmp_path_factory) -> dict[str, Path]:
    rng = np.random.default_rng(2026)
    out = tmp_path_factory.mktemp("nonmusic")
    audio = {
        "silence": np.zeros(20 * SR, np.float32),
        "pink_-40dBFS": scale_to_dbfs(colored_noise(20 * SR, 1.0, rng), -40.0),
        "speech": _speech(),
    }
    paths = {}
    for name, x in audio.items():
        paths[name] = out / f"{name}.wav"
        sf.write(paths[name], x, SR)
    return paths


def test_level_factor_and_hysteresis():
    assert level_factor(-np.inf) == 0.0 and level_factor(float("nan")) == 0.0
    assert level_factor(FLOOR_DBFS) == 0.0 and level_factor(-20.0) == 1.0
    assert 0.0 < level_factor(FLOOR_DBFS + 5) < 1.0
    assert rms_dbfs(np.zeros(8000, np.float32)) == -np.inf
    assert rms_dbfs(np.ones(8000, np.float32)) == pytest.approx(0.0)
    gate = ActivityGate()
    loud = -20.0
    assert gate.process(0.5, loud) == (0.5, False)  # below ON: stays off
    assert gate.process(ON, loud)[1] is True
    assert gate.process(0.45, loud)[1] is True  # between OFF and ON: stays on
    assert gate.process(OFF - 0.01, loud)[1] is False
    assert gate.process(0.99, -90.0) == (0.0, False)  # a silent hop is never music
    assert gate.process(None, loud) == (1.0, True)  # a model without a music output: the level decides


def test_analyze_reports_nonmusic_inactive_and_music_active(cli, nonmusic_files, example_audio, tmp_path):
    res = cli("analyze", *map(str, nonmusic_files.values()), str(example_audio), "-o", str(tmp_path), "--quiet")
    assert res.returncode == 0, res.stderr
    for name in nonmusic_files:
        d = read_csv(tmp_path / f"{name}.csv")
        inactive = np.mean(np.array(d["active"]) == 0)
        assert inactive >= 0.95, f"{name}: only {inactive:.0%} of hops inactive"
        assert all(q == 0 for q, a in zip(d["quadrant"], d["active"], strict=True) if a == 0)
    music = read_csv(tmp_path / f"{example_audio.stem}.csv")
    active = np.array(music["active"]) == 1
    # The example opens with ~8 s of a synthetic ambient drone (Sonic Pi's ambi_lunar_land), which the default
    # takes for room tone; from the guitar chord on (10 s) it is music: the glass hum, then drum loops.
    assert active[20:].mean() >= 0.95, f"music active in only {active[20:].mean():.0%} of hops from 10 s on"
    assert set(np.array(music["quadrant"])[active]) <= {1, 2, 3, 4}
    conf = np.array(music["confidence"])
    assert conf.min() >= 0 and conf.max() <= 1


def test_websocket_stream_marks_nonmusic_inactive(nonmusic_files, tmp_path):
    """One paced stream: 5 s silence, 5 s pink noise, then speech; the live messages say inactive."""
    parts = [sf.read(nonmusic_files[name], dtype="float32")[0] for name in ("silence", "pink_-40dBFS", "speech")]
    mixed = np.concatenate([parts[0][: 5 * SR], parts[1][: 5 * SR], parts[2][: 8 * SR]])
    path = tmp_path / "room.wav"
    sf.write(path, mixed, SR)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emotrack", "run", "--file", str(path), "--quiet", "--no-osc", "--ws-port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )

    try:
        messages = asyncio.run(asyncio.wait_for(ws_messages(port), 90))
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    hops = [m for m in messages if m["type"] == "emotion"]
    assert len(hops) >= 30
    inactive = np.mean([not m["active"] for m in hops])
    assert inactive >= 0.95, f"only {inactive:.0%} of live hops inactive"
    for m in hops:
        assert 0 <= m["confidence"] <= 1
        assert m["active"] or m["quadrant"] == 0
