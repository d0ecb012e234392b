"""The durable session store: one SQLite file per session folder, written while ``emotrack run`` tracks.

A session folder ``DIR`` holds ``DIR/sessions.sqlite`` with every session recorded there (a new id per run,
never overwritten; ``append=True`` continues the latest one). SQLite in WAL mode is the store because it is
made for exactly this: a committed transaction survives ``kill -9``, readers (``emotrack report`` while a run
is still recording) never block the writer, and a torn write can't corrupt what was committed before.

Hops are buffered and committed together at least every :data:`COMMIT_SECONDS` of wall time, checked on each
:meth:`SessionStore.add_hop`, so a killed run loses at most about a second. A write error (disk full, a
yanked drive, a folder gone read-only) never reaches the tracking: it is logged once and counted.

Tables: ``sessions`` (one row per session: times, model, device, settings JSON, client, notes), ``runs`` (one
row per ``run`` that wrote to a session, with the seq/stream-time offsets an append applied), ``hops``
(primary key ``(session, seq)``) and ``markers``. ``PRAGMA application_id`` marks the file as emotrack's and
``PRAGMA user_version`` is :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from emotrack import __version__
from emotrack.errors import ConfigError, OutputError
from emotrack.realtime.messages import HopMessage

__all__ = ["APPLICATION_ID", "COMMIT_SECONDS", "DB_NAME", "MAX_LABEL", "SCHEMA_VERSION", "SessionStore",
           "connect_readonly", "resolve_db"]

logger = logging.getLogger(__name__)

DB_NAME = "sessions.sqlite"
"""File name of the store inside a session folder."""

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of the tables below; a store with a higher number was written by a newer emotrack."""

APPLICATION_ID = 0x456D5472  # "EmTr"
"""``PRAGMA application_id`` of an emotrack store, so any other SQLite file is refused by name."""

COMMIT_SECONDS = 0.5
"""Longest wall time a hop may wait in memory before it is committed (checked on each ``add_hop``)."""

MAX_LABEL = 200
"""Marker labels are cut to this many characters (they come from network clients too)."""

BUSY_TIMEOUT_MS = 1000
"""How long a write waits for another writer of the same file (two runs in one folder) before it fails."""

_SCHEMA = f"""
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,          -- time.time() of the first run
    ended REAL,                     -- NULL while recording, or after a kill
    end_reason TEXT,
    model TEXT, model_hash TEXT, device TEXT,
    settings TEXT NOT NULL DEFAULT '{{}}',   -- JSON
    client TEXT, notes TEXT,
    hop_s REAL NOT NULL,
    app_version TEXT
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session INTEGER NOT NULL REFERENCES sessions(id),
    started REAL NOT NULL,
    seq_offset INTEGER NOT NULL, time_offset REAL NOT NULL,
    model TEXT, model_hash TEXT, device TEXT, settings TEXT, app_version TEXT
);
CREATE TABLE hops (
    session INTEGER NOT NULL REFERENCES sessions(id),
    seq INTEGER NOT NULL,
    stream_time REAL NOT NULL, wall_time REAL NOT NULL,
    valence REAL, arousal REAL, valence_raw REAL, arousal_raw REAL,
    quadrant INTEGER NOT NULL, confidence REAL, active INTEGER NOT NULL,
    latency_total_ms REAL, latency TEXT,   -- latency: JSON of all stages, ms
    dropped_samples INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session, seq)
) WITHOUT ROWID;
CREATE TABLE markers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session INTEGER NOT NULL REFERENCES sessions(id),
    wall_time REAL NOT NULL, stream_time REAL NOT NULL,
    label TEXT NOT NULL, source TEXT
);
CREATE INDEX markers_session ON markers(session, stream_time);
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""

_INSERT_HOP = ("INSERT OR IGNORE INTO hops (session, seq, stream_time, wall_time, valence, arousal, valence_raw, "
               "arousal_raw, quadrant, confidence, active, latency_total_ms, latency, dropped_samples) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def resolve_db(path: str | Path) -> Path:
    """The ``.sqlite`` file of a session folder or store path; :class:`ConfigError` if there is none."""
    path = Path(path)
    db = path / DB_NAME if path.is_dir() else path
    if not db.is_file():
        where = f"{path} (no {DB_NAME} in it)" if path.is_dir() else str(path)
        raise ConfigError(f"no session store at {where}")
    return db


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc) or type(exc).__name__


def check_schema(conn: sqlite3.Connection, db: Path) -> bool:
    """Raise :class:`OutputError` unless ``db`` is an emotrack store this version reads; False if it is empty."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app_id == 0 and version == 0 and tables == 0:
        return False
    if app_id != APPLICATION_ID:
        raise OutputError(f"{db} is not an emotrack session store (another SQLite database)")
    if version > SCHEMA_VERSION:
        raise OutputError(f"{db} was written by a newer emotrack (store schema {version}; this one reads "
                          f"up to {SCHEMA_VERSION})")
    return True


def connect_readonly(db: Path) -> sqlite3.Connection:
    """Open ``db`` read-only (``mode=ro``), so a report can run while ``emotrack run`` writes it.

    A WAL reader needs the ``-shm`` file beside the database; on a read-only medium where a cleanly closed store
    has none (and no ``-wal`` either, so nothing is pending), the file is opened as immutable instead.
    """
    uri = db.resolve().as_uri()
    try:
        return _probe(sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False))
    except sqlite3.OperationalError:
        if Path(f"{db}-wal").exists():
            raise
    return _probe(sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False))


def _probe(conn: sqlite3.Connection) -> sqlite3.Connection:
    """``conn`` once a first read worked (SQLite opens files lazily); closed if it failed."""
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def clean_label(label: Any) -> str:
    """A marker label as stored: whitespace (newlines too) collapsed, cut to :data:`MAX_LABEL`, or ``"mark"``."""
    text = " ".join(str(label if label is not None else "").split())[:MAX_LABEL].strip()
    return text or "mark"


def _finite(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


class _RecordingLock:
    """An advisory lock held while a session records, so a reader can tell "recording" from "interrupted".

    The kernel drops it when the process dies (``kill -9`` too), so a lock file that exists but is unlocked
    means the run that wrote it is gone. POSIX only (``fcntl``); elsewhere readers fall back on hop times.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        try:
            import fcntl

            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (ImportError, OSError):  # no fcntl, a full disk, another writer: liveness falls back on times
            self.release(unlink=False)

    def release(self, unlink: bool = True) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if unlink:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)
        self._fd = None


def lock_path(db: Path, session_id: int) -> Path:
    """The lock file a recording session holds beside its store."""
    return db.with_name(f".{db.name}.recording-{session_id}.lock")


def is_recording(db: Path, session_id: int) -> bool | None:
    """True while a live process records ``session_id``, False if its lock is abandoned, None if unknown."""
    path = lock_path(db, session_id)
    try:
        import fcntl

        fd = os.open(path, os.O_RDONLY)
    except (ImportError, OSError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


class SessionStore:
    """Writes one session's hops, markers and metadata; open it with :meth:`create`.

    Every method is thread-safe (one connection guarded by a lock: hops come from the tracking thread,
    markers from the asyncio loop, an OSC thread or a key reader). Write errors never raise: they are logged
    once and counted in :attr:`errors` (failed writes) and :attr:`lost_hops` (hops that are not stored).
    """

    def __init__(self, conn: sqlite3.Connection, db: Path, session_id: int, seq_offset: int = 0,
                 time_offset: float = 0.0) -> None:
        self._conn = conn
        self.path = db
        """The ``.sqlite`` file."""
        self.session_id = session_id
        self.seq_offset = seq_offset
        """Added to each hop's ``seq`` (non-zero when this run appends to an earlier one)."""
        self.time_offset = time_offset
        """Seconds added to each hop's and marker's ``stream_time`` (likewise)."""
        self._lock = threading.Lock()
        self._pending: list[tuple] = []
        self._last_commit = time.monotonic()
        self._closed = False
        self._recording = _RecordingLock(lock_path(db, session_id))
        self.errors = 0
        """Writes (hop commits, markers, notes, the close) that failed."""
        self.lost_hops = 0
        """Hops that could not be stored."""
        self.lost_markers = 0
        """Markers that could not be stored."""
        self.hops_written = 0
        """Hops committed."""

    @classmethod
    def create(cls, root: str | Path, *, model: str, model_hash: str, device: str, settings: dict, hop_s: float,
               client: str | None = None, notes: str | None = None, append: bool = False) -> SessionStore:
        """Open ``root/sessions.sqlite`` (folder and file created if missing) and start a session in it.

        Each call makes a new session id, so a restart never overwrites an earlier session; ``append=True``
        continues the latest session instead, offsetting this run's ``seq`` and ``stream_time`` so they keep
        increasing after its last stored hop. Raises :class:`OutputError` (one line, naming the path) if the
        folder can't be written, is a file, holds a corrupt or foreign database, or has nothing to append to.
        """
        root = Path(root)
        db = root / DB_NAME
        if root.exists() and not root.is_dir():
            raise OutputError(f"cannot use {root} as a session folder: it is a file")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create session folder {root}: {_reason(exc)}") from None
        if db.exists() and not db.is_file():
            raise OutputError(f"cannot use {db} as a session store: not a file")
        conn = None
        try:
            conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1e3)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")  # takes the write lock now: an unwritable store fails here, not later
            if not check_schema(conn, db):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            now = time.time()
            settings_json = json.dumps(settings, sort_keys=True, default=str)
            if append:
                session_id, seq_offset, time_offset = cls._continue(conn, db, client, notes)
            else:
                session_id = conn.execute(
                    "INSERT INTO sessions (started, model, model_hash, device, settings, client, notes, hop_s, "
                    "app_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (now, model, model_hash, device, settings_json, client, notes, float(hop_s), __version__),
                ).lastrowid
                seq_offset, time_offset = 0, 0.0
            conn.execute("INSERT INTO runs (session, started, seq_offset, time_offset, model, model_hash, device, "
                         "settings, app_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (session_id, now, seq_offset, time_offset, model, model_hash, device, settings_json,
                          __version__))
            conn.execute("COMMIT")
        except OutputError:
            if conn is not None:
                conn.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
                raise OutputError(f"{db} is not an emotrack session store (corrupt or not SQLite)") from None
            raise OutputError(f"cannot write session store {db}: {_reason(exc)}") from None
        if mode.lower() != "wal":
            logger.warning("session store %s is not in WAL mode (%s): a report while recording may wait", db, mode)
        return cls(conn, db, int(session_id), int(seq_offset), float(time_offset))

    @staticmethod
    def _continue(conn: sqlite3.Connection, db: Path, client: str | None, notes: str | None) -> tuple[int, int, float]:
        row = conn.execute("SELECT id, client, notes FROM sessions ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            raise OutputError(f"no session to append to in {db}")
        session_id, old_client, old_notes = row
        if is_recording(db, session_id):
            raise OutputError(f"cannot append to session {session_id} in {db}: another run is still recording it")
        last_seq, last_hop = conn.execute("SELECT max(seq), max(stream_time) FROM hops WHERE session = ?",
                                          (session_id,)).fetchone()
        last_mark = conn.execute("SELECT max(stream_time) FROM markers WHERE session = ?", (session_id,)).fetchone()[0]
        conn.execute("UPDATE sessions SET ended = NULL, end_reason = NULL, client = ?, notes = ? WHERE id = ?",
                     (client or old_client, "\n".join(n for n in (old_notes, notes) if n) or None, session_id))
        seq_offset = 0 if last_seq is None else int(last_seq) + 1
        time_offset = max(float(last_hop or 0.0), float(last_mark or 0.0))
        return int(session_id), seq_offset, time_offset

    # -- writing -----------------------------------------------------------------------------------------

    def add_hop(self, msg: HopMessage) -> None:
        """Buffer one hop; commit the buffer when :data:`COMMIT_SECONDS` have passed since the last commit."""
        latency = {str(k): float(v) for k, v in msg.latency_ms.items()}
        total = latency.get("total")
        row = (
            self.session_id, int(msg.seq) + self.seq_offset, float(msg.stream_time) + self.time_offset,
            float(msg.wall_time), _finite(msg.valence), _finite(msg.arousal), _finite(msg.valence_raw),
            _finite(msg.arousal_raw), int(msg.quadrant), _finite(msg.confidence), int(bool(msg.active)),
            None if total is None else _finite(total),
            json.dumps({k: round(v, 3) for k, v in latency.items() if math.isfinite(v)}),
            int(msg.dropped_samples),
        )
        with self._lock:
            if self._closed:
                self.lost_hops += 1
                self._failed(OutputError("the store is closed"), "hops after close are lost")
                return
            self._pending.append(row)
            if time.monotonic() - self._last_commit >= COMMIT_SECONDS:
                self._flush_locked()

    def flush(self) -> None:
        """Commit buffered hops now (``add_hop`` does this by itself every :data:`COMMIT_SECONDS`)."""
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def _flush_locked(self) -> None:
        rows, self._pending = self._pending, []  # a failed batch stays lost: memory never grows on a full disk
        self._last_commit = time.monotonic()
        if not rows:
            return
        try:
            self._conn.execute("BEGIN")
            written = self._conn.executemany(_INSERT_HOP, rows).rowcount
            self._conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            self._rollback()
            self.lost_hops += len(rows)
            self._failed(exc, "hops are lost, tracking goes on")
            return
        self.hops_written += written
        if written < len(rows):  # a repeated seq: the first one stays (never happens with one tracker)
            logger.warning("session store %s: %d hops with a repeated seq were ignored", self.path, len(rows) - written)

    def add_marker(self, label: str, *, wall_time: float, stream_time: float, source: str) -> dict:
        """Store a marker at once (with any buffered hops) and return it as sent to dashboard clients.

        ``stream_time`` is on the current run's clock, like the hops sent live, and is returned as given; the
        stored value adds the append offset. ``id`` is None if the write failed (counted in
        :attr:`lost_markers`).
        """
        label = clean_label(label)
        source = str(source)[:32]
        marker: dict[str, Any] = {"id": None, "label": label, "wall_time": float(wall_time),
                                  "stream_time": float(stream_time), "source": source}
        with self._lock:
            if self._closed:
                self.lost_markers += 1
                self._failed(OutputError("the store is closed"), "markers after close are lost")
                return marker
            self._flush_locked()
            try:
                self._conn.execute("BEGIN")
                marker["id"] = self._conn.execute(
                    "INSERT INTO markers (session, wall_time, stream_time, label, source) VALUES (?, ?, ?, ?, ?)",
                    (self.session_id, float(wall_time), float(stream_time) + self.time_offset, label, source),
                ).lastrowid
                self._conn.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                self._rollback()
                marker["id"] = None
                self.lost_markers += 1
                self._failed(exc, "a marker is lost")
        return marker

    def note(self, text: str) -> None:
        """Append a line to the session's notes (committed at once; a failure is counted, not raised)."""
        text = str(text).strip()
        if not text:
            return
        with self._lock:
            if self._closed:
                return
            try:
                self._conn.execute("BEGIN")
                self._conn.execute("UPDATE sessions SET notes = CASE WHEN notes IS NULL OR notes = '' THEN ? "
                                   "ELSE notes || char(10) || ? END WHERE id = ?", (text, text, self.session_id))
                self._conn.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                self._rollback()
                self._failed(exc, "a note is lost")

    def close(self, reason: str = "end") -> None:
        """Commit what is buffered and record the end time and ``reason``; later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._flush_locked()
            self._closed = True
            try:
                self._conn.execute("BEGIN")
                self._conn.execute("UPDATE sessions SET ended = ?, end_reason = ? WHERE id = ?",
                                   (time.time(), str(reason), self.session_id))
                self._conn.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                self._rollback()
                self._failed(exc, "the end time is not recorded")
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._recording.release()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close("end" if exc_type is None else "error")

    # -- errors ------------------------------------------------------------------------------------------

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

    def _failed(self, exc: BaseException, what: str) -> None:
        self.errors += 1
        if self.errors == 1:
            logger.warning("cannot write session store %s (%s): %s", self.path, _reason(exc), what)
