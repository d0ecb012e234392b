"""Offline analysis: audio files in, one per-hop CSV each out, through the live pipeline in batches.

Each file is streamed block by block through :class:`~emotrack.realtime.tracker.Tracker`, the code path
of ``emotrack run --file``, except that complete hops are computed :data:`BATCH_HOPS` at a time (the
front end's :meth:`~emotrack.frontends.FrontEnd.process_hops` and one model call per batch, instead of one of
each per hop). The numbers equal ``run --file``'s
up to float rounding (tested to 1e-5). Files are spread over ``jobs`` processes, one model each.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from emotrack.audio import audio_seconds
from emotrack.csvout import HopCsvWriter
from emotrack.errors import AudioError, ConfigError, OutputError
from emotrack.inference import ModelRunner
from emotrack.realtime.smoothing import Smoother
from emotrack.realtime.sources import FileSource
from emotrack.realtime.tracker import HopResult, Tracker

__all__ = ["BATCH_HOPS", "AnalyzeSummary", "analyze_file", "analyze_files", "default_jobs", "iter_file_results"]

BATCH_HOPS = 64
"""Hops per batched computation (32 s of audio): large enough that per-call costs vanish, small enough
that memory does not grow with the file."""


def analyze_file(path: str | Path, runner: ModelRunner, smoother: Smoother | None = None,
                 batch_hops: int = BATCH_HOPS) -> list[HopResult]:
    """All hop results of one file (raw and smoothed)."""
    return list(iter_file_results(path, runner, smoother, batch_hops))


def iter_file_results(path: str | Path, runner: ModelRunner, smoother: Smoother | None = None,
                      batch_hops: int = BATCH_HOPS) -> Iterator[HopResult]:
    """Hop results of one file as they are computed, ``batch_hops`` at a time."""
    source = FileSource(path, realtime=False)
    tracker = Tracker(runner, source.sample_rate, smoother, batch_hops=batch_hops)
    for block, t_last in source:
        yield from tracker.process(block, t_last)
    yield from tracker.finish()


def _write_csv(path: Path, out_dir: Path, runner: ModelRunner, smoother: Smoother | None) -> None:
    """``out_dir/<stem>.csv`` written through a ``.part`` file, so a failed file leaves no half CSV."""
    target = out_dir / f"{path.stem}.csv"
    tmp = target.with_suffix(".csv.part")
    try:
        writer = HopCsvWriter(tmp, extra_columns=())
        try:
            for result in iter_file_results(path, runner, smoother):
                writer.write(result)
        finally:
            writer.close()
        tmp.replace(target)
    except OSError as exc:  # disk full, permission: this file fails, its .part goes, the others still run
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


@dataclass
class AnalyzeSummary:
    """What one :func:`analyze_files` call did, for the line ``emotrack analyze`` ends with."""

    files: int = 0
    failed: int = 0
    audio_s: float = 0.0
    """Seconds of audio in the files written (the failed ones left out)."""
    wall_s: float = 0.0

    def line(self, out_dir: str | Path) -> str:
        """``emotrack: 3 of 4 files analysed (1 failed), 12:05 of audio in 9.8 s, 74x real time; CSVs in out/``."""
        failed = f" ({self.failed} failed)" if self.failed else ""
        rate = f", {self.audio_s / self.wall_s:.0f}x real time" if self.wall_s > 0 and self.audio_s > 0 else ""
        minutes, seconds = divmod(round(self.audio_s), 60)
        return (f"emotrack: {self.files - self.failed} of {self.files} files analysed{failed}, {minutes}:{seconds:02d} "
                f"of audio in {self.wall_s:.1f} s{rate}; CSVs in {out_dir}")


def _summed(failed: list[tuple[Path, str]], seconds: dict[Path, float], started: float,
            summary: AnalyzeSummary | None) -> list[tuple[Path, str]]:
    """Fill ``summary`` (when asked for) and hand ``failed`` back, so both return paths stay one line."""
    if summary is not None:
        bad = {path for path, _ in failed}
        summary.files, summary.failed = len(seconds), len(bad)
        summary.audio_s = sum(s for path, s in seconds.items() if path not in bad)
        summary.wall_s = time.perf_counter() - started
    return failed


_worker: tuple[ModelRunner, Smoother | None] | None = None


def _start_worker(model: str, provider: str, threads: int, smoother: Smoother | None) -> None:
    global _worker
    _worker = (ModelRunner(model, provider=provider, threads=threads), smoother)


def _analyze_in_worker(path: Path, out_dir: Path) -> str | None:
    assert _worker is not None
    try:
        _write_csv(path, out_dir, *_worker)
    except (AudioError, OutputError) as exc:
        return str(exc)
    return None


def analyze_files(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    runner: ModelRunner,
    smoother: Smoother | None = None,
    progress: bool = True,
    jobs: int = 1,
    summary: AnalyzeSummary | None = None,
) -> list[tuple[Path, str]]:
    """Write ``out_dir/<stem>.csv`` for each input; returns ``(path, error)`` for files that failed.

    A bad file does not stop the others; its CSV is not written (no half files). With ``jobs > 1`` the
    files are spread over that many processes, each loading ``runner``'s model with its provider and
    threads. The progress bar counts audio seconds and is drawn only on a terminal (a piped log gets no ``\\r``
    frames). ``summary``, when given, is filled with the counts, audio seconds and wall time.
    """
    started = time.perf_counter()
    paths = [Path(p) for p in paths]
    stems = [p.stem for p in paths]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise ConfigError(f"inputs share the name {clash[0]!r}: their CSVs would overwrite each other")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds = {p: audio_seconds(p) for p in paths}
    bar = tqdm(total=sum(seconds.values()), desc="analyze", unit="s", disable=None if progress else True,
               file=sys.stderr, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]")
    failed: list[tuple[Path, str]] = []
    jobs = min(jobs, len(paths))
    with bar:
        if jobs <= 1:
            for path in paths:
                try:
                    _write_csv(path, out_dir, runner, smoother)
                except (AudioError, OutputError) as exc:
                    failed.append((path, str(exc)))
                bar.update(seconds[path])
            return _summed(failed, seconds, started, summary)
        context = multiprocessing.get_context("spawn")  # no fork of a process that holds ORT thread pools
        init = (str(runner.path), runner.provider, runner.threads, smoother)
        with _one_blas_thread(), ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                                                     initargs=init) as pool:
            futures = {pool.submit(_analyze_in_worker, p, out_dir): p for p in paths}
            for future in as_completed(futures):
                error = future.result()
                if error is not None:
                    failed.append((futures[future], error))
                bar.update(seconds[futures[future]])
    return _summed(sorted(failed, key=lambda item: paths.index(item[0])), seconds, started, summary)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Workers started inside get one BLAS thread each (unless the user set a count): one process per core
    already fills the cores, and OpenBLAS's spinning helper threads would fight the other workers for them."""
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ.setdefault(name, "1")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)


def default_jobs() -> int:
    """One process per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
