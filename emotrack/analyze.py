"""Offline analysis: audio files in, one per-hop CSV each out, through the live pipeline.

Each file is streamed block by block through :class:`~emotrack.realtime.tracker.Tracker` exactly as
``emotrack run --file`` does (only without pacing), so both give the same numbers.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from emotrack.csvout import HopCsvWriter
from emotrack.errors import AudioError, ConfigError
from emotrack.inference import ModelRunner
from emotrack.realtime.smoothing import Smoother
from emotrack.realtime.sources import FileSource
from emotrack.realtime.tracker import HopResult, Tracker

__all__ = ["analyze_file", "analyze_files"]


def analyze_file(path: str | Path, runner: ModelRunner, smoother: Smoother | None = None) -> list[HopResult]:
    """All hop results of one file (raw and smoothed)."""
    source = FileSource(path, realtime=False)
    tracker = Tracker(runner, source.sample_rate, smoother)
    results: list[HopResult] = []
    for block, t_last in source:
        results += tracker.process(block, t_last)
    results += tracker.finish()
    return results


def analyze_files(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    runner: ModelRunner,
    smoother: Smoother | None = None,
    progress: bool = True,
) -> list[tuple[Path, str]]:
    """Write ``out_dir/<stem>.csv`` for each input; returns ``(path, error)`` for files that failed.

    A bad file does not stop the others; its CSV is not written (no half files).
    """
    paths = [Path(p) for p in paths]
    stems = [p.stem for p in paths]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise ConfigError(f"inputs share the name {clash[0]!r}: their CSVs would overwrite each other")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    failed: list[tuple[Path, str]] = []
    for path in tqdm(paths, desc="analyze", unit="file", disable=not progress, file=sys.stderr):
        try:
            results = analyze_file(path, runner, smoother)
        except AudioError as exc:
            failed.append((path, str(exc)))
            continue
        target = out_dir / f"{path.stem}.csv"
        tmp = target.with_suffix(".csv.part")
        writer = HopCsvWriter(tmp, extra_columns=())
        for r in results:
            writer.write(r)
        writer.close()
        tmp.replace(target)
    return failed
