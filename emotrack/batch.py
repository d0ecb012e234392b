"""Catalogue analysis: folders, globs and manifests in, ``analyze``'s per-file CSVs out, optionally on Ray.

``emotrack analyze --engine ray`` spreads files over a pool of Ray actors, each holding one
:class:`~emotrack.inference.ModelRunner` for the whole job (a model loads once per worker, not per file).
A worker computes a file's CSV with :func:`emotrack.analyze._write_csv`, the very writer of plain ``analyze``,
and returns its bytes; the driver writes them under ``--out`` through a ``.part`` file and a rename, so a
CSV that exists is complete, and appends a line to ``done.jsonl`` (the input's size and mtime, the model and
the smoothing). A rerun skips the files whose CSV exists and whose ``done.jsonl`` line still matches, so a
crashed or interrupted job resumes where it stopped and a changed input is redone. A file that fails is
listed in ``failed.json`` (path, error) and the job goes on.

Ray is an optional extra and is imported only here, only by the Ray engine: plain ``analyze`` never loads it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.util
import json
import math
import os
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotrack.errors import ConfigError, EmotrackError, OutputError

__all__ = [
    "AUDIO_EXTENSIONS",
    "DONE_FILE",
    "FAILED_FILE",
    "MANIFEST_EXTENSIONS",
    "BatchSummary",
    "Item",
    "analyze_catalogue",
    "check_engine_options",
    "collect_inputs",
    "write_parquet",
]

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au",
                              ".caf", ".w64", ".rf64"})
"""What folders and globs pick up (files named directly are taken whatever their name)."""

MANIFEST_EXTENSIONS = frozenset({".txt", ".lst", ".m3u", ".m3u8"})
"""An input with one of these names is a list of inputs: one path per line, ``#`` comments, relative to it."""

DONE_FILE = "done.jsonl"
FAILED_FILE = "failed.json"
IN_FLIGHT_PER_WORKER = 2
"""Files queued on each actor at once, so it starts the next one without waiting for the driver."""

RAY_EXTRA = "--engine ray needs the ray extra: pip install 'emotrack[ray]'"


@dataclass(frozen=True)
class Item:
    """One input file and where its CSV goes, relative to ``--out``."""

    path: Path
    csv: Path


# --------------------------------------------------------------------------------------------- inputs


def collect_inputs(specs: Iterable[str | os.PathLike[str]]) -> list[Item]:
    """Expand files, folders (recursively), globs and manifests into items, in order, each file once.

    A file named directly writes ``<stem>.csv``, as plain ``analyze`` does; a file found in a folder, by a glob
    or in a manifest mirrors its path below that folder (the glob's fixed leading folders, the manifest's
    folder), so same-named tracks of different albums do not collide and the layout does not move when the
    catalogue grows. A missing file named directly or in a manifest stays in the list and fails on its own
    (one stale line must not stop a long job); an empty folder or a glob that matches nothing is an error.
    """
    items: list[Item] = []
    for spec in specs:
        items.extend(_expand(str(spec), set()))
    return _dedupe(items)


def _expand(spec: str, manifests: set[Path]) -> list[Item]:
    path = Path(spec).expanduser()
    if path.is_dir():
        found = [Item(p, _mirror(p, path)) for p in _walk_audio(path)]
        if not found:
            raise ConfigError(f"no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) in {path}")
        return found
    if path.is_file() and path.suffix.lower() in MANIFEST_EXTENSIONS:
        return _read_manifest(path, manifests)
    if not path.exists() and glob.has_magic(spec):
        root = _glob_root(path)
        found = [Item(p, _mirror(p, root)) for p in map(Path, sorted(glob.glob(str(path), recursive=True)))
                 if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]
        if not found:
            raise ConfigError(f"no audio file matches {spec}")
        return found
    return [Item(path, Path(f"{path.stem}.csv"))]


def _walk_audio(folder: Path) -> list[Path]:
    """Audio files below ``folder`` sorted by path, hidden files and folders (``.DS_Store``, ``._x.mp3``) left out."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / name for name in files
                  if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS]
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def _glob_root(pattern: Path) -> Path:
    """The leading folders of a glob that hold no wildcard: what its matches are mirrored below."""
    fixed = []
    for part in pattern.parent.parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path()


def _read_manifest(manifest: Path, seen: set[Path]) -> list[Item]:
    """Inputs listed in ``manifest`` (files, folders, globs or other manifests), relative to its folder."""
    key = manifest.resolve()
    if key in seen:
        raise ConfigError(f"manifest {manifest} includes itself")
    try:
        lines = manifest.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read manifest {manifest}: {getattr(exc, 'strerror', None) or exc}") from None
    items = []
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        target = Path(entry).expanduser()
        if not target.is_absolute():
            target = manifest.parent / target
        for item in _expand(str(target), seen | {key}):
            # everything below the manifest's folder mirrors its path there; what lies elsewhere keeps its own
            below = item.path.resolve().is_relative_to(manifest.parent.resolve())
            items.append(Item(item.path, _mirror(item.path, manifest.parent)) if below else item)
    return items


def _mirror(path: Path, root: Path) -> Path:
    """``path`` below ``root`` with ``.csv`` for its suffix; just ``<stem>.csv`` when it is not below ``root``."""
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(path.name)
    return rel.parent / f"{rel.stem}.csv"


def _dedupe(items: list[Item]) -> list[Item]:
    """Each input once (a folder and a glob may both find it); two inputs for one CSV are an error."""
    by_input: dict[Path, Item] = {}
    by_csv: dict[Path, Item] = {}
    for item in items:
        key = item.path.resolve()
        if key in by_input:
            continue
        if item.csv in by_csv:
            other = by_csv[item.csv].path
            raise ConfigError(f"inputs {other} and {item.path} would both write {item.csv}")
        by_input[key] = by_csv[item.csv] = item
    return list(by_input.values())


# --------------------------------------------------------------------------------------------- options


def check_engine_options(engine: str, address: str | None, gpus_per_worker: float, provider: str,
                         jobs: int | None) -> None:
    """The engine's options hang together and Ray is installed, checked before a model loads."""
    if engine != "ray":
        for given, name in ((address is not None, "--address"), (gpus_per_worker, "--gpus-per-worker")):
            if given:
                raise ConfigError(f"{name} needs --engine ray")
        return
    if importlib.util.find_spec("ray") is None:
        raise ConfigError(RAY_EXTRA)
    if not (math.isfinite(gpus_per_worker) and 0 <= gpus_per_worker <= 64):
        raise ConfigError(f"--gpus-per-worker must be between 0 and 64, got {gpus_per_worker:g}")
    if gpus_per_worker and provider == "cpu":
        raise ConfigError("--gpus-per-worker needs --provider auto or cuda")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")


# --------------------------------------------------------------------------------------------- resume


def settings_key(runner: Any, smoother: Any) -> dict[str, str]:
    """What the numbers depend on besides the input: a done file is redone when any of it changes."""
    digest = hashlib.sha256(Path(runner.path).read_bytes()).hexdigest()[:16]
    return {"model": f"{runner.card.name} {runner.card.version} sha256:{digest}",
            "smoothing": smoother.describe() if smoother is not None else "none"}


def _stamp(path: Path) -> dict[str, int] | None:
    """Size and mtime of an input (``None`` when it cannot be read: it will fail on its own)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _load_done(out_dir: Path) -> dict[str, dict[str, Any]]:
    """``done.jsonl`` keyed by CSV path; the last line for a CSV wins, a torn last line is ignored."""
    done: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in (out_dir / DONE_FILE).read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                done[entry["csv"]] = entry
    return done


def _is_done(item: Item, entry: dict[str, Any] | None, out_dir: Path, settings: dict[str, str]) -> bool:
    if entry is None or not (out_dir / item.csv).is_file():
        return False
    stamp = _stamp(item.path)
    return (stamp is not None and entry.get("input") == str(item.path.resolve()) and entry.get("settings") == settings
            and entry.get("size") == stamp["size"] and entry.get("mtime_ns") == stamp["mtime_ns"])


# --------------------------------------------------------------------------------------------- the Ray job


class _Worker:
    """A Ray actor's state: one model session for all the files it is given."""

    def __init__(self, model: str | None, provider: str, threads: int, smoother: Any) -> None:
        from emotrack.inference import ModelRunner

        self.runner = ModelRunner(model, provider=provider, threads=threads)
        self.smoother = smoother
        self.tmp = Path(tempfile.mkdtemp(prefix="emotrack-batch-"))

    def ready(self) -> bool:
        """Answered once the model has loaded: lets the driver fail in one line when workers cannot start."""
        return True

    def analyze(self, path: str) -> dict[str, Any]:
        """One file's CSV bytes (exactly plain ``analyze``'s) and audio seconds, or its one-line error."""
        from emotrack.analyze import _write_csv
        from emotrack.audio import audio_seconds

        source = Path(path)
        target = self.tmp / f"{source.stem}.csv"
        try:
            _write_csv(source, self.tmp, self.runner, self.smoother)
            data = target.read_bytes()
        except EmotrackError as exc:
            return {"error": str(exc)}
        except Exception as exc:  # one odd file must not end a catalogue job; keep what went wrong
            return {"error": f"{path}: {type(exc).__name__}: {exc}"}
        finally:
            with contextlib.suppress(OSError):
                target.unlink(missing_ok=True)
        return {"csv": data, "audio_s": audio_seconds(source)}


@dataclass
class BatchSummary:
    """What one catalogue run did."""

    analysed: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    audio_s: float = 0.0
    wall_s: float = 0.0
    startup_s: float = 0.0
    """Of ``wall_s``, the time to start Ray (or join the cluster) and load a model in every worker."""
    workers: int = 0

    def line(self, out_dir: str | Path) -> str:
        """``emotrack: 3 of 5 files analysed (1 failed, listed in out/failed.json; 1 skipped: already done), 12:05 of
        audio in 30.2 s on 2 Ray workers (6.1 s of it starting them), 24x real time; CSVs in out``, as plain
        ``analyze``'s line with Ray's part."""
        notes = [f"{len(self.failed)} failed, listed in {Path(out_dir) / FAILED_FILE}"] if self.failed else []
        notes += [f"{self.skipped} skipped: already done"] if self.skipped else []
        text = f"emotrack: {self.analysed} of {self.analysed + self.skipped + len(self.failed)} files analysed"
        text += f" ({'; '.join(notes)})" if notes else ""
        if self.workers:
            minutes, seconds = divmod(round(self.audio_s), 60)
            rate = f", {self.audio_s / self.wall_s:.0f}x real time" if self.wall_s > 0 and self.audio_s > 0 else ""
            text += (f", {minutes}:{seconds:02d} of audio in {self.wall_s:.1f} s on {self.workers} Ray "
                     f"worker{'s' if self.workers != 1 else ''} ({self.startup_s:.1f} s of it starting them){rate}")
        return f"{text}; CSVs in {out_dir}"


def analyze_catalogue(items: Sequence[Item], out_dir: str | Path, runner: Any, smoother: Any = None, *,
                      model: str | None = None, provider: str = "auto", jobs: int | None = None,
                      address: str | None = None, gpus_per_worker: float = 0.0, progress: bool = True) -> BatchSummary:
    """Write ``out_dir/<item.csv>`` for every item not done yet on a pool of Ray actors; see the module docstring.

    ``runner`` is the driver's own model (checked before Ray starts; its file and card key the resume
    state); the actors load ``model`` (a bundled name, or an absolute path every node can read; default:
    ``runner``'s file) with ``provider`` and ``runner.threads``. Uses the Ray session of this process when one
    is up, else starts an embedded one with ``jobs`` CPUs (``address`` None) or joins the cluster at
    ``address``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = settings_key(runner, smoother)
    done = _load_done(out_dir)
    todo = [item for item in items if not _is_done(item, done.get(str(item.csv)), out_dir, settings)]
    summary = BatchSummary(skipped=len(items) - len(todo))
    started = time.perf_counter()
    if todo:
        with _ray_session(address, jobs) as ray:
            workers = _worker_count(ray, jobs, gpus_per_worker, len(todo))
            summary.workers = workers
            make = ray.remote(_Worker).options(num_cpus=1, num_gpus=gpus_per_worker, max_restarts=-1,
                                               max_task_retries=1)
            ref = model or _model_ref(runner.path)
            actors = [make.remote(ref, provider, runner.threads, smoother) for _ in range(workers)]
            _wait_ready(ray, actors)
            summary.startup_s = time.perf_counter() - started
            bar = _progress_bar(len(todo), progress)
            with bar, _open_log(out_dir / DONE_FILE) as log:
                for item, result in _dispatch(ray, actors, todo):
                    if "error" in result:
                        summary.failed.append((item.path, result["error"]))
                    else:
                        try:
                            _write_output(out_dir / item.csv, result["csv"])
                        except OutputError as exc:
                            summary.failed.append((item.path, str(exc)))
                        else:
                            _log_done(log, item, settings, result["audio_s"])
                            summary.analysed += 1
                            summary.audio_s += result["audio_s"]
                    bar.update(1)
                    bar.set_postfix_str(f"{summary.audio_s / 3600:.2f} h audio, {len(summary.failed)} failed")
            summary.wall_s = time.perf_counter() - started  # before Ray shuts down: the job's own time
    order = {item.path: i for i, item in enumerate(items)}
    summary.failed.sort(key=lambda f: order[f[0]])
    _write_failed(out_dir, summary.failed)
    return summary


def _model_ref(path: Path) -> str:
    """A bundled model by name (each node resolves its own installed copy), any other model by absolute path."""
    from emotrack.inference import bundled_models

    path = Path(path).resolve()
    return path.stem if bundled_models().get(path.stem, Path()).resolve() == path else str(path)


@contextlib.contextmanager
def _ray_session(address: str | None, jobs: int | None) -> Iterator[Any]:
    """Ray, connected: this process's session if one is up, else embedded (``jobs`` CPUs) or the cluster."""
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_EXTRA) from None
    if ray.is_initialized():
        yield ray
        return
    quiet = {"logging_level": "ERROR", "log_to_driver": False, "include_dashboard": False}
    if address is None:
        from emotrack.analyze import default_jobs

        ray.init(address="local", num_cpus=jobs or default_jobs(), **quiet)
    else:
        _check_reachable(address)
        quiet.pop("include_dashboard")
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"--address {address}: {str(exc).splitlines()[0]}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """A ``host:port`` address answers TCP, so a typo fails in one line rather than in Ray's retry loop."""
    if address in ("auto", "local") or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"--address {address}: expected HOST:PORT (the head node's GCS port, usually 6379), "
                          "auto or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"--address {address}: no Ray cluster answers there ({exc.strerror or exc})") from None


def _worker_count(ray: Any, jobs: int | None, gpus_per_worker: float, files: int) -> int:
    """Actors to start: ``jobs``, else as many as the cluster's CPUs (or GPUs) hold; never more than files."""
    resources = ray.cluster_resources()
    cpus, gpus = int(resources.get("CPU", 0)), resources.get("GPU", 0.0)
    fit = cpus if not gpus_per_worker else min(cpus, int(gpus / gpus_per_worker + 1e-9))
    workers = jobs or fit
    if workers < 1 or workers > fit:
        need = f"{workers} workers x (1 CPU" + (f" + {gpus_per_worker:g} GPU)" if gpus_per_worker else ")")
        raise ConfigError(f"{need} do not fit the Ray cluster ({cpus} CPUs, {gpus:g} GPUs)")
    return min(workers, files)


def _wait_ready(ray: Any, actors: list[Any]) -> None:
    """Every actor has loaded its model (a model path a node cannot read fails here, once, not per file)."""
    try:
        ray.get([actor.ready.options(max_task_retries=0).remote() for actor in actors])
    except ray.exceptions.RayError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise ConfigError(f"the Ray workers could not start: {lines[-1] if lines else type(exc).__name__}") from None


def _dispatch(ray: Any, actors: list[Any], todo: Sequence[Item]) -> Iterator[tuple[Item, dict[str, Any]]]:
    """Results as they finish, ``IN_FLIGHT_PER_WORKER`` files queued per actor; a task Ray itself fails
    (a worker killed twice on one file, say) becomes that file's error."""
    pending = deque(todo)
    running: dict[Any, tuple[int, Item]] = {}

    def submit(index: int) -> None:
        item = pending.popleft()
        running[actors[index].analyze.remote(str(item.path))] = (index, item)

    for index in range(len(actors)):
        for _ in range(IN_FLIGHT_PER_WORKER):
            if pending:
                submit(index)
    while running:
        ready, _ = ray.wait(list(running), num_returns=1)
        index, item = running.pop(ready[0])
        try:
            result = ray.get(ready[0])
        except ray.exceptions.RayError as exc:
            result = {"error": f"{item.path}: the Ray worker failed ({type(exc).__name__}: "
                               f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no message'})"}
        if pending:
            submit(index)
        yield item, result


def _write_output(target: Path, data: bytes) -> None:
    """Write a CSV through ``.part`` and a rename, as ``analyze`` does: a CSV that exists is whole."""
    tmp = target.with_suffix(".csv.part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None


def _open_log(path: Path) -> Any:
    """``done.jsonl`` for appending, unbuffered: each line reaches the OS whole, and closing never writes."""
    try:
        return path.open("ab", buffering=0)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _log_done(log: Any, item: Item, settings: dict[str, str], audio_s: float) -> None:
    """Append the item's ``done.jsonl`` line and hand it to the OS at once (a crash keeps what finished).

    A failed append ends the job in one line: the disk is full or gone, and every later file would fail too.
    """
    entry = {"csv": str(item.csv), "input": str(item.path.resolve()), **(_stamp(item.path) or {}),
             "settings": settings, "audio_s": round(audio_s, 3)}
    try:
        log.write((json.dumps(entry) + "\n").encode())
    except OSError as exc:
        raise OutputError(f"cannot write {log.name}: {exc.strerror or exc}") from None


def _write_failed(out_dir: Path, failed: list[tuple[Path, str]]) -> None:
    """``failed.json`` lists this run's failures; a stale one from an earlier run goes when none failed."""
    path = out_dir / FAILED_FILE
    if not failed:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return
    try:
        path.write_text(json.dumps([{"path": str(p), "error": e} for p, e in failed], indent=1) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _progress_bar(total: int, progress: bool) -> Any:
    """Files done of ``total`` on stderr, audio hours in the postfix; silent when stderr is no terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc="analyze (ray)", unit="file", file=sys.stderr,
                disable=None if progress else True)


# --------------------------------------------------------------------------------------------- Parquet


def write_parquet(path: str | Path, csvs: Iterable[tuple[Path, Path]]) -> int:
    """One Parquet data set of curves: every ``(input, csv)`` CSV's rows with an ``input`` column; returns rows.

    ``time_s`` is float64, the values float32 (the CSVs hold 7 decimals of values in [-1, 1]), ``quadrant`` int8,
    ``active`` bool.
    Written one row group per ~256 k rows, so memory does not grow with the catalogue.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    writer = None
    rows = 0
    chunk: list[Any] = []
    try:
        for source, csv in csvs:
            table = pacsv.read_csv(csv)
            table = table.cast(pa.schema([_arrow_field(pa, name) for name in table.column_names]))
            table = table.add_column(0, "input", pa.array([str(source)] * table.num_rows, pa.string()))
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            chunk.append(table)
            rows += table.num_rows
            if sum(t.num_rows for t in chunk) >= 1 << 18:
                writer.write_table(pa.concat_tables(chunk))
                chunk = []
        if writer is None:
            raise ConfigError(f"--parquet {path}: no finished CSV to put in it")
        if chunk:
            writer.write_table(pa.concat_tables(chunk))
        writer.close()
        writer = None
        tmp.replace(path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:  # a failed data set leaves no .part behind
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return rows


def _arrow_field(pa: Any, name: str) -> Any:
    if name == "quadrant":
        return pa.field(name, pa.int8())
    if name == "active":
        return pa.field(name, pa.bool_())
    return pa.field(name, pa.float64() if name == "time_s" else pa.float32())


def parquet_sources(items: Sequence[Item], out_dir: Path, failed: Sequence[tuple[Path, str]],
                    engine: str) -> list[tuple[Path, Path]]:
    """``(input, csv)`` of every finished item: the Ray engine's layout or plain ``analyze``'s ``<stem>.csv``."""
    bad = {p for p, _ in failed}
    done = _load_done(out_dir) if engine == "ray" else {}
    pairs = []
    for item in items:
        csv = out_dir / (item.csv if engine == "ray" else f"{item.path.stem}.csv")
        if item.path not in bad and csv.is_file() and (engine != "ray" or str(item.csv) in done):
            pairs.append((item.path, csv))
    return pairs
