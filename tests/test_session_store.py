"""The session store (issue 16): real SQLite files, a child process killed with SIGKILL at a random moment, a full
disk, unwritable folders, corrupt files, appends and concurrent readers."""

from __future__ import annotations

import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from emotrack.errors import ConfigError, OutputError
from emotrack.inference import ModelRunner
from emotrack.realtime.messages import HopMessage
from emotrack.session import COMMIT_SECONDS, SessionStore, list_sessions, load_session
from emotrack.session.store import APPLICATION_ID, DB_NAME
from tests.conftest import REPO

SEED = int(os.environ.get("EMOTRACK_TEST_SEED", time.time_ns() % 2**32))
"""Seed of the random kill moments; set EMOTRACK_TEST_SEED to replay a failure (it is in every message)."""


def hop(seq: int, *, active: bool = True, v: float = 0.2, a: float = -0.3, wall: float | None = None) -> HopMessage:
    """A hop as the tracker makes it: ``stream_time = (seq + 1) * 0.5``, quadrant 0 when inactive."""
    q = (4 if a < 0 else 1) if v >= 0 else (3 if a < 0 else 2)
    return HopMessage(seq=seq, stream_time=(seq + 1) * 0.5, wall_time=time.time() if wall is None else wall,
                      valence=v if active else 0.0, arousal=a if active else 0.0, valence_raw=v, arousal_raw=a,
                      quadrant=q if active else 0, model="test-0.0.1",
                      latency_ms={"capture": 1.0, "features": 4.0, "inference": 0.5, "smoothing": 0.0, "total": 6.0},
                      dropped_samples=0, confidence=0.9 if active else 0.1, active=active)


def new_store(root: Path, **kw) -> SessionStore:
    args = {"model": "test-0.0.1", "model_hash": "abc123", "device": "null sink", "settings": {"smoothing": "ema"},
            "hop_s": 0.5} | kw
    return SessionStore.create(root, **args)


def db_rows(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def real_hops() -> list[HopMessage]:
    """The default model's hops on the bundled example recording, built as ``emotrack run`` builds them."""
    from emotrack.session.example import hop_messages

    return list(hop_messages())


# a child that writes a hop every ~0.1 s and reports each one (after add_hop returned) on stdout
WRITER = r"""
import sys, time
from emotrack.realtime.messages import HopMessage
from emotrack.session import SessionStore
root, append, pause = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3])
store = SessionStore.create(root, model="child-0.0.1", model_hash="h", device="pipe", settings={}, hop_s=0.5,
                            client="P-01", append=append)
print("session", store.session_id, store.seq_offset, flush=True)
seq = 0
while True:
    store.add_hop(HopMessage(seq=seq, stream_time=(seq + 1) * 0.5, wall_time=time.time(), valence=0.1, arousal=0.2,
                             valence_raw=0.1, arousal_raw=0.2, quadrant=1, model="child-0.0.1",
                             latency_ms={"total": 5.0}))
    print(seq, flush=True)
    seq += 1
    time.sleep(pause)
"""


class Child:
    """A writer process; ``reported`` holds ``(monotonic receipt time, seq)`` of each hop it reported."""

    def __init__(self, root: Path, append: bool = False, pause: float = 0.1) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), "1" if append else "0", str(pause)],
                                     cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline().split()
        assert first and first[0] == "session", (first, self.proc.stderr.read() if self.proc.poll() else "")
        self.session_id, self.seq_offset = int(first[1]), int(first[2])
        self.reported: list[tuple[float, int]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.reported.append((time.monotonic(), int(line)))

    def wait_hops(self, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.reported) < n:
            assert self.proc.poll() is None, self.proc.stderr.read()
            assert time.monotonic() < deadline, f"the writer reported {len(self.reported)} < {n} hops"
            time.sleep(0.02)

    def kill(self) -> float:
        t = time.monotonic()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        return t

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()


# -- the basic contract ------------------------------------------------------------------------------------


def test_real_hops_markers_and_metadata_round_trip(tmp_path, real_hops):
    store = new_store(tmp_path, model=real_hops[0].model, client="P-07", notes="first session",
                      settings={"smoothing": "ema", "attack": 1.0})
    for msg in real_hops:
        store.add_hop(msg)
        if msg.seq == 40:
            marker = store.add_marker("  client\nstarts singing ", wall_time=msg.wall_time, stream_time=msg.stream_time,
                                      source="key")
    store.note("second line")
    store.close("SIGTERM")
    assert marker["id"] is not None and marker["label"] == "client starts singing"
    assert (store.errors, store.lost_hops, store.hops_written) == (0, 0, len(real_hops))

    db = tmp_path / DB_NAME
    assert integrity(db) == "ok"
    assert db_rows(db, "PRAGMA journal_mode") == [("wal",)]
    assert db_rows(db, "PRAGMA application_id") == [(APPLICATION_ID,)]
    s = load_session(tmp_path)
    assert s.info.id == store.session_id and s.info.state == "ended" and s.info.end_reason == "SIGTERM"
    assert s.info.ended is not None and s.info.ended >= s.info.started
    assert (s.info.model, s.info.model_hash, s.info.client) == (ModelRunner().card.model_id, "abc123", "P-07")
    assert s.notes == "first session\nsecond line" and s.settings == {"smoothing": "ema", "attack": 1.0}
    assert len(s.hops) == s.info.hops == len(real_hops) == 130  # the 65 s example
    assert s.info.duration_s == pytest.approx(65.0)
    for name in ("valence", "arousal", "valence_raw", "arousal_raw", "confidence", "stream_time", "wall_time"):
        np.testing.assert_allclose(getattr(s.hops, name), [getattr(m, name) for m in real_hops], err_msg=name)
    np.testing.assert_array_equal(s.hops.quadrant, [m.quadrant for m in real_hops])
    np.testing.assert_array_equal(s.hops.active, [m.active for m in real_hops])
    np.testing.assert_allclose(s.hops.latency_total_ms, [m.latency_ms["total"] for m in real_hops], atol=1e-3)
    assert s.hops.active[:10].sum() <= 2 and s.hops.active[60:].all()  # mostly "no music" in the drone (README)
    [m] = s.markers
    assert (m.label, m.stream_time, m.source) == ("client starts singing", 20.5, "key")


def test_hops_are_buffered_and_committed_within_commit_seconds(tmp_path):
    store = new_store(tmp_path)
    db = store.path
    count = "SELECT count(*) FROM hops"
    store.add_hop(hop(0))
    assert db_rows(db, count) == [(0,)]  # buffered: one transaction per ~0.5 s, not per hop
    time.sleep(COMMIT_SECONDS + 0.05)
    store.add_hop(hop(1))
    assert db_rows(db, count) == [(2,)]  # the call after COMMIT_SECONDS committed both
    store.add_marker("now", wall_time=time.time(), stream_time=1.0, source="ws")
    store.add_hop(hop(2))
    assert db_rows(db, "SELECT count(*) FROM markers") == [(1,)]  # a marker is committed at once
    store.close()
    assert db_rows(db, count) == [(3,)]


def test_close_is_idempotent_and_later_writes_are_counted_not_raised(tmp_path, caplog):
    store = new_store(tmp_path)
    store.add_hop(hop(0))
    store.close("end")
    ended = list_sessions(tmp_path)[0].ended
    store.close("again")
    store.add_hop(hop(1))
    assert store.add_marker("late", wall_time=0, stream_time=1, source="osc")["id"] is None
    [info] = list_sessions(tmp_path)
    assert (info.ended, info.end_reason, info.hops, info.state) == (ended, "end", 1, "ended")
    assert (store.lost_hops, store.lost_markers) == (1, 1)


def test_marker_labels_are_cleaned():
    from emotrack.session.store import MAX_LABEL, clean_label

    assert clean_label("  track 3 ") == "track 3"
    assert clean_label("") == clean_label("   ") == clean_label(None) == "mark"
    assert clean_label("a\r\n\tb") == "a b"
    assert clean_label("x" * 500) == "x" * MAX_LABEL


def test_a_second_session_gets_a_new_id_and_leaves_the_first_alone(tmp_path):
    first = new_store(tmp_path, client="A")
    for i in range(20):
        first.add_hop(hop(i))
    first.add_marker("one", wall_time=time.time(), stream_time=3.0, source="key")
    first.close()
    before = load_session(tmp_path, first.session_id)
    second = new_store(tmp_path, client="B")
    for i in range(5):
        second.add_hop(hop(i, v=-0.5))
    second.close()
    assert second.session_id != first.session_id
    after = load_session(tmp_path, first.session_id)
    assert after.info == before.info and after.markers == before.markers
    for name in ("seq", "valence", "stream_time", "wall_time"):
        np.testing.assert_array_equal(getattr(after.hops, name), getattr(before.hops, name))
    assert [(i.id, i.client, i.hops) for i in list_sessions(tmp_path)] == [(first.session_id, "A", 20),
                                                                           (second.session_id, "B", 5)]
    assert load_session(tmp_path).info.id == second.session_id  # None = the latest


def test_append_continues_seq_and_stream_time(tmp_path):
    first = new_store(tmp_path, notes="part one")
    for i in range(10):
        first.add_hop(hop(i))
    first.close("end")
    more = new_store(tmp_path, append=True, notes="part two")
    assert (more.session_id, more.seq_offset, more.time_offset) == (first.session_id, 10, 5.0)
    assert list_sessions(tmp_path)[0].ended is None  # reopened
    for i in range(4):  # the new run counts from 0 again
        more.add_hop(hop(i))
    marker = more.add_marker("after the break", wall_time=time.time(), stream_time=1.0, source="dashboard")
    assert marker["stream_time"] == 1.0  # as given: the live run's clock
    more.close("end")
    s = load_session(tmp_path)
    np.testing.assert_array_equal(s.hops.seq, np.arange(14))
    np.testing.assert_allclose(s.hops.stream_time, 0.5 * np.arange(1, 15))
    assert s.markers[0].stream_time == 6.0 and s.info.runs == 2 and s.notes == "part one\npart two"
    assert s.info.ended is not None and len(list_sessions(tmp_path)) == 1


def test_append_without_a_session_is_a_one_line_error(tmp_path):
    with pytest.raises(OutputError, match="no session to append to in .*sessions.sqlite"):
        new_store(tmp_path, append=True)


def test_threads_write_hops_and_markers_at_once(tmp_path):
    store = new_store(tmp_path)
    errors: list[BaseException] = []

    def hops(base: int) -> None:
        try:
            for i in range(150):
                store.add_hop(hop(base + i))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def marks(source: str) -> None:
        for i in range(30):
            store.add_marker(f"{source} {i}", wall_time=time.time(), stream_time=i, source=source)

    threads = [threading.Thread(target=hops, args=(k * 1000,)) for k in range(3)]
    threads += [threading.Thread(target=marks, args=(s,)) for s in ("ws", "osc", "key")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    assert not errors and store.errors == 0
    s = load_session(tmp_path)
    assert len(s.hops) == 450 and len(s.markers) == 90
    assert {m.source for m in s.markers} == {"ws", "osc", "key"}


def test_a_reader_never_blocks_the_writer(tmp_path):
    store = new_store(tmp_path)
    for i in range(10):
        store.add_hop(hop(i))
    store.flush()
    reader = sqlite3.connect(f"{store.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM hops").fetchone() == (10,)  # a read transaction is open now
    t0 = time.monotonic()
    for i in range(10, 20):
        store.add_hop(hop(i))
    store.flush()
    store.add_marker("during a read", wall_time=time.time(), stream_time=9.0, source="ws")
    assert time.monotonic() - t0 < 0.5 and store.errors == 0  # no waiting on the reader
    assert reader.execute("SELECT count(*) FROM hops").fetchone() == (10,)  # its snapshot is unchanged
    assert len(load_session(tmp_path).hops) == 20  # a new reader sees the new commit while the old one reads
    reader.execute("COMMIT")
    reader.close()
    store.close()


# -- kill -9 -----------------------------------------------------------------------------------------------


def _check_after_kill(child: Child, killed_at: float, db: Path, first_seq: int, seed: int) -> np.ndarray:
    msg = f"seed {seed} (EMOTRACK_TEST_SEED={seed} replays it)"
    assert integrity(db) == "ok", msg
    stored = load_session(db, child.session_id).hops.seq
    mine = stored[stored >= first_seq] - first_seq
    assert np.array_equal(mine, np.arange(len(mine))), f"{msg}: stored seqs are not 0..n: {mine}"
    due = [seq for t, seq in child.reported if t <= killed_at - 1.0]  # reported at least 1 s before the kill
    assert due and len(mine) > max(due), f"{msg}: {len(mine)} stored, hop {max(due, default=-1)} was due"
    assert len(mine) <= len(child.reported) + 1, msg  # at most the one hop committed but not yet reported
    return stored


def test_kill_9_at_a_random_moment_loses_at_most_a_second(tmp_path):
    rng = random.Random(SEED)
    child = Child(tmp_path)
    try:
        child.wait_hops(1)
        time.sleep(rng.uniform(1.2, 3.5))
        killed_at = child.kill()
    finally:
        child.stop()
    db = tmp_path / DB_NAME
    stored = _check_after_kill(child, killed_at, db, 0, SEED)
    [info] = list_sessions(tmp_path)
    assert info.ended is None and info.state == "interrupted", SEED  # the kernel dropped the recording lock

    # append after the kill: seq and stream time go on where the store ended, in the same session
    again = Child(tmp_path, append=True)
    try:
        assert (again.session_id, again.seq_offset) == (child.session_id, len(stored))
        again.wait_hops(1)
        assert list_sessions(tmp_path)[0].state == "recording"
        with pytest.raises(OutputError, match="another run is still recording it"):
            new_store(tmp_path, append=True)
        time.sleep(rng.uniform(1.2, 2.5))
        killed_at = again.kill()
    finally:
        again.stop()
    _check_after_kill(again, killed_at, db, len(stored), SEED)
    s = load_session(tmp_path)
    np.testing.assert_allclose(np.diff(s.hops.stream_time), 0.5)
    assert s.info.runs == 2

    new_store(tmp_path, append=True).close("end")  # an append that closes cleanly ends the session
    assert list_sessions(tmp_path)[0].state == "ended"


def test_the_live_path_never_imports_matplotlib():
    code = ("import sys, emotrack.session, emotrack.realtime.live, emotrack.cli; "
            "bad = [m for m in sys.modules if m.startswith('matplotlib')]; assert not bad, bad")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


# -- broken disks, folders and files -----------------------------------------------------------------------


def _fill(path: Path) -> None:
    """Write ``path`` until the disk is full."""
    with path.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def test_full_disk_loses_hops_counts_them_and_recovers(tmpfs, caplog):
    root = tmpfs("full", "size=256k")
    store = new_store(root)
    for i in range(5):
        store.add_hop(hop(i))
    store.flush()
    assert store.hops_written == 5
    filler = root / "filler"
    _fill(filler)
    caplog.set_level(logging.WARNING, logger="emotrack.session.store")
    seq = 5
    for _ in range(200):  # each flush is one commit; the WAL must grow and can't
        store.add_hop(hop(seq))
        store.flush()
        seq += 1
    marker = store.add_marker("on a full disk", wall_time=time.time(), stream_time=50.0, source="key")
    assert store.lost_hops > 0 and store.errors >= 1, (store.lost_hops, store.errors)
    assert store.hops_written + store.lost_hops == seq
    assert marker["id"] is None and store.lost_markers == 1
    warnings = [r for r in caplog.records if r.name == "emotrack.session.store"]
    assert len(warnings) == 1, [w.getMessage() for w in warnings]
    assert "full" in warnings[0].getMessage(), warnings[0].getMessage()  # "database or disk is full"

    filler.unlink()  # space again: later hops are stored
    written = store.hops_written
    for _ in range(5):
        store.add_hop(hop(seq))
        store.flush()
        seq += 1
    assert store.hops_written == written + 5
    store.close()
    assert integrity(store.path) == "ok"
    assert len(load_session(root).hops) == store.hops_written


def test_a_folder_that_is_a_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(OutputError, match=f"cannot use {path} as a session folder: it is a file"):
        new_store(path)
    with pytest.raises(OutputError, match="cannot create session folder"):
        new_store(path / "sub")


def test_an_unwritable_folder_is_a_one_line_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores chmod; the read-only tmpfs test covers an unwritable folder")
    root = tmp_path / "locked"
    root.mkdir()
    root.chmod(0o500)
    try:
        with pytest.raises(OutputError, match=f"cannot write session store {root / DB_NAME}"):
            new_store(root)
    finally:
        root.chmod(0o700)


def test_a_read_only_disk_is_a_one_line_error_and_its_sessions_still_read(tmpfs):
    ro = tmpfs("ro", "ro,size=64k")
    with pytest.raises(OutputError, match=f"cannot write session store {ro / DB_NAME}") as err:
        new_store(ro)
    assert "\n" not in str(err.value)
    with pytest.raises(OutputError, match="cannot create session folder"):
        new_store(ro / "sub")

    root = tmpfs("was-rw", "size=512k")
    store = new_store(root)
    for i in range(8):
        store.add_hop(hop(i))
    store.close()
    subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
    with pytest.raises(OutputError, match=f"cannot write session store {root / DB_NAME}"):
        new_store(root)
    assert len(load_session(root).hops) == 8  # a report from a read-only medium still works
    assert list_sessions(root)[0].hops == 8


def test_corrupt_and_foreign_files_are_one_line_errors(tmp_path):
    rng = random.Random(SEED)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / DB_NAME).write_bytes(rng.randbytes(8192))
    with pytest.raises(OutputError, match="is not an emotrack session store") as err:
        new_store(bad)
    assert "\n" not in str(err.value)
    with pytest.raises(OutputError, match="corrupt or not an emotrack store"):
        load_session(bad)

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    conn = sqlite3.connect(foreign / DB_NAME)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    for call in (lambda: new_store(foreign), lambda: load_session(foreign), lambda: list_sessions(foreign)):
        with pytest.raises(OutputError, match="not an emotrack session store"):
            call()

    newer = tmp_path / "newer"
    new_store(newer).close()
    conn = sqlite3.connect(newer / DB_NAME)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(OutputError, match="newer emotrack"):
        load_session(newer)


def test_missing_store_and_unknown_id_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no session store at"):
        load_session(tmp_path / "nothing")
    with pytest.raises(ConfigError, match=r"no sessions\.sqlite in it"):
        list_sessions(tmp_path)
    new_store(tmp_path).close()
    with pytest.raises(ConfigError, match=r"no session 7 in .* \(sessions: 1\)"):
        load_session(tmp_path, 7)


def test_audio_recorder_writes_flac_and_counts_errors(tmp_path, caplog):
    import soundfile as sf

    from emotrack.session import AudioRecorder

    rec = AudioRecorder(tmp_path / "session.flac", 16000)
    rec.write(np.full(8000, 2.0, dtype=np.float32))  # clipped, not wrapped around
    rec.write(np.zeros((8000, 2), dtype=np.float32))  # mixed to mono
    rec.close()
    rec.close()
    data, sr = sf.read(tmp_path / "session.flac")
    assert sr == 16000 and data.shape == (16000,) and data[:8000].min() > 0.99 and rec.errors == 0
    with pytest.raises(OutputError, match="cannot write audio to"):
        AudioRecorder(tmp_path / "missing" / "x.flac", 16000)
    stereo = AudioRecorder(tmp_path / "st.flac", 16000, channels=2)
    stereo.write(np.zeros((100, 3), dtype=np.float32))
    stereo.close()
    assert stereo.errors == 1
