"""Reading session stores: the list of sessions in a folder and one session's hops, markers and metadata.

Stores are opened read-only, so ``emotrack sessions`` and ``emotrack report`` work while ``emotrack run`` is
still recording (WAL readers never block the writer); every read of one session is one snapshot.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emotrack.errors import ConfigError, OutputError
from emotrack.session.store import check_schema, connect_readonly, is_recording, resolve_db

__all__ = ["HOP_COLUMNS", "Hops", "Marker", "Session", "SessionInfo", "list_sessions", "load_session"]

RECORDING_IDLE_S = 10.0
"""Where a recording can't be told from its lock (no ``fcntl``), a session with no end whose last hop is older
than this counts as interrupted."""

HOP_COLUMNS = ("seq", "stream_time", "wall_time", "valence", "arousal", "valence_raw", "arousal_raw", "quadrant",
               "confidence", "active", "latency_total_ms", "dropped_samples")
"""The per-hop arrays of :class:`Hops`, in the order of the exported CSV."""

_INT_COLUMNS = {"seq", "quadrant", "dropped_samples"}


@dataclass(frozen=True)
class SessionInfo:
    """One session's summary, as ``emotrack sessions`` lists it.

    ``ended`` is None while the session records and after a killed run; ``state`` tells those apart
    (``"ended"``, ``"recording"`` or ``"interrupted"``). ``duration_s`` is the stream time of the last hop:
    the seconds of audio tracked (an appended session's pause between runs is not counted).
    """

    id: int
    started: float
    ended: float | None
    end_reason: str | None
    model: str | None
    device: str | None
    client: str | None
    hops: int
    markers: int
    duration_s: float
    path: Path
    model_hash: str | None = None
    hop_s: float = 0.5
    app_version: str | None = None
    state: str = "ended"
    runs: int = 1
    last_wall_time: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``path`` as a string)."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Hops:
    """A session's hops as numpy arrays, one element per stored hop in ``seq`` order (see :data:`HOP_COLUMNS`).

    Values the tracker could not compute are NaN. ``active`` is boolean; ``quadrant`` 0 means no music.
    """

    seq: np.ndarray
    stream_time: np.ndarray
    wall_time: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    valence_raw: np.ndarray
    arousal_raw: np.ndarray
    quadrant: np.ndarray
    confidence: np.ndarray
    active: np.ndarray
    latency_total_ms: np.ndarray
    dropped_samples: np.ndarray

    def __len__(self) -> int:
        return len(self.seq)

    @classmethod
    def from_rows(cls, rows: list[tuple]) -> Hops:
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(HOP_COLUMNS)
        arrays: dict[str, np.ndarray] = {}
        for name, values in zip(HOP_COLUMNS, cols, strict=True):
            if name in _INT_COLUMNS:
                arrays[name] = np.array([0 if v is None else v for v in values], dtype=np.int64)
            elif name == "active":
                arrays[name] = np.array([bool(v) for v in values], dtype=bool)
            else:
                arrays[name] = np.array(values, dtype=np.float64)  # NULL (a non-finite value) becomes NaN
        return cls(**arrays)


@dataclass(frozen=True)
class Marker:
    """A marked moment: ``stream_time`` on the session's clock, ``source`` the route it came by."""

    id: int
    label: str
    wall_time: float
    stream_time: float
    source: str | None


@dataclass(frozen=True)
class Session:
    """One recorded session: its summary, settings and notes, hops and markers."""

    info: SessionInfo
    settings: dict[str, Any]
    notes: str | None
    hops: Hops
    markers: list[Marker] = field(default_factory=list)


@contextlib.contextmanager
def _open(path: str | Path) -> Iterator[tuple[sqlite3.Connection, Path]]:
    """A read-only connection to the store at ``path`` inside one read transaction (one snapshot)."""
    db = resolve_db(path)
    conn = None
    try:
        conn = connect_readonly(db)
        conn.isolation_level = None
        conn.execute("BEGIN")
        if not check_schema(conn, db):
            raise ConfigError(f"no sessions in {db} (an empty database)")
        yield conn, db
    except sqlite3.Error as exc:
        if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in str(exc) or "malformed" in str(exc)):
            raise OutputError(f"cannot read session store {db}: corrupt or not an emotrack store ({exc})") from None
        raise OutputError(f"cannot read session store {db}: {exc}") from None
    finally:
        if conn is not None:
            conn.close()


def _infos(conn: sqlite3.Connection, db: Path, where: str = "", args: tuple = ()) -> list[SessionInfo]:
    rows = conn.execute(
        "SELECT s.id, s.started, s.ended, s.end_reason, s.model, s.device, s.client, s.model_hash, s.hop_s, "
        "s.app_version, "
        "(SELECT count(*) FROM hops h WHERE h.session = s.id), "
        "(SELECT count(*) FROM markers m WHERE m.session = s.id), "
        "(SELECT max(stream_time) FROM hops h WHERE h.session = s.id), "
        "(SELECT max(wall_time) FROM hops h WHERE h.session = s.id), "
        "(SELECT count(*) FROM runs r WHERE r.session = s.id), "
        "(SELECT max(started) FROM runs r WHERE r.session = s.id) "
        f"FROM sessions s {where} ORDER BY s.id", args).fetchall()
    infos = []
    for (sid, started, ended, reason, model, device, client, model_hash, hop_s, version, n_hops, n_marks,
         last_t, last_wall, runs, run_started) in rows:
        last_activity = max(x for x in (last_wall, run_started, started) if x is not None)
        if ended is not None:
            state = "ended"
        else:
            live = is_recording(db, sid)
            if live is None:
                live = time.time() - last_activity < RECORDING_IDLE_S
            state = "recording" if live else "interrupted"
        infos.append(SessionInfo(
            id=int(sid), started=float(started), ended=ended, end_reason=reason, model=model, device=device,
            client=client, hops=int(n_hops), markers=int(n_marks), duration_s=float(last_t or 0.0), path=db,
            model_hash=model_hash, hop_s=float(hop_s), app_version=version, state=state, runs=int(runs or 1),
            last_wall_time=last_wall,
        ))
    return infos


def list_sessions(root_or_db: str | Path) -> list[SessionInfo]:
    """Every session in a session folder (or its ``.sqlite``), oldest first."""
    with _open(root_or_db) as (conn, db):
        return _infos(conn, db)


def load_session(path: str | Path, session_id: int | None = None) -> Session:
    """Read one session (``None``: the latest) from a session folder or its ``.sqlite``.

    Raises :class:`ConfigError` for a missing store or an unknown id, :class:`OutputError` for a corrupt file
    or one that is not an emotrack store.
    """
    with _open(path) as (conn, db):
        if session_id is None:
            latest = conn.execute("SELECT max(id) FROM sessions").fetchone()[0]
            if latest is None:
                raise ConfigError(f"no sessions in {db}")
            session_id = int(latest)
        infos = _infos(conn, db, "WHERE s.id = ?", (int(session_id),))
        if not infos:
            ids = [str(r[0]) for r in conn.execute("SELECT id FROM sessions ORDER BY id")]
            raise ConfigError(f"no session {session_id} in {db} (sessions: {', '.join(ids) or 'none'})")
        settings_json, notes = conn.execute("SELECT settings, notes FROM sessions WHERE id = ?",
                                            (session_id,)).fetchone()
        hop_rows = conn.execute(f"SELECT {', '.join(HOP_COLUMNS)} FROM hops WHERE session = ? ORDER BY seq",
                                (session_id,)).fetchall()
        marker_rows = conn.execute("SELECT id, label, wall_time, stream_time, source FROM markers WHERE session = ? "
                                   "ORDER BY stream_time, id", (session_id,)).fetchall()
    try:
        settings = json.loads(settings_json or "{}")
    except json.JSONDecodeError:
        settings = {"unreadable": settings_json}
    return Session(
        info=infos[0],
        settings=settings if isinstance(settings, dict) else {"value": settings},
        notes=notes,
        hops=Hops.from_rows(hop_rows),
        markers=[Marker(int(i), str(label), float(w), float(t), source) for i, label, w, t, source in marker_rows],
    )
