"""Recorded sessions (issue 16): a durable SQLite store written while ``emotrack run --session DIR`` tracks,
readers for it, optional FLAC audio, and (in :mod:`emotrack.session.report`, which alone imports matplotlib)
the HTML/PDF report.

::

    store = SessionStore.create(root, model=..., model_hash=..., device=..., settings={...}, hop_s=0.5)
    store.add_hop(msg)                      # every hop; committed at least every 0.5 s
    store.add_marker("calm-down exercise", wall_time=time.time(), stream_time=t, source="key")
    store.close("end")
    session = load_session(root)            # the latest session, read-only (works while recording)
"""

from emotrack.session.audio import AudioRecorder
from emotrack.session.read import Hops, Marker, Session, SessionInfo, list_sessions, load_session
from emotrack.session.store import COMMIT_SECONDS, DB_NAME, SessionStore

__all__ = ["COMMIT_SECONDS", "DB_NAME", "AudioRecorder", "Hops", "Marker", "Session", "SessionInfo", "SessionStore",
           "list_sessions", "load_session"]
