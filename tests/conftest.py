"""Shared fixtures: the bundled example recording, the shared data folder and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from emotrack.assets import EXAMPLE_AUDIO

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
    from emotrack.training.commands import load_clips

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
