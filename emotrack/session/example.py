"""A session recorded from an audio file, as ``emotrack run --session`` would, for tests and the README picture.

``python -m emotrack.session.example docs/img/report-example.png`` tracks the bundled example recording with
the default model into a session (with a few markers), and saves the report's main figure; ``--report
FILE.html|FILE.pdf`` writes the whole report too, ``--dir DIR`` keeps the session folder.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from emotrack.assets import EXAMPLE_AUDIO
from emotrack.realtime.messages import HopMessage
from emotrack.realtime.smoothing import DEFAULT_SMOOTHING
from emotrack.session.store import SessionStore

__all__ = ["EXAMPLE_MARKERS", "file_sha256", "hop_messages", "record_file"]

EXAMPLE_MARKERS = ((9.5, "guitar enters"), (27.5, "drums start"), (52.0, "client joins on drum"))
"""``(stream time, label)`` markers for the bundled example: its calm part begins at the guitar chord ~9 s in,
drum loops take over at ~27 s (the last one is made up, to show a marker a therapist would set)."""


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (the model hash a session records)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hop_messages(audio: str | Path = EXAMPLE_AUDIO, model: str | None = None, start: float | None = None,
                 smoothing: str = DEFAULT_SMOOTHING):
    """Yield the :class:`HopMessage` of each hop of ``audio``, built as ``emotrack run`` builds them.

    ``wall_time`` is ``start`` (default: now) plus the hop's stream time, as if the file had played in real time;
    ``smoothing`` is ``run``'s default (:data:`~emotrack.realtime.smoothing.DEFAULT_SMOOTHING`).
    """
    from emotrack.analyze import iter_file_results
    from emotrack.inference import ModelRunner
    from emotrack.realtime.smoothing import make_smoother

    runner = ModelRunner(model, provider="cpu")
    start = time.time() if start is None else start
    for r in iter_file_results(audio, runner, make_smoother(smoothing), batch_hops=1):  # hop by hop, as live
        yield HopMessage(seq=r.seq, stream_time=r.stream_time, wall_time=start + r.stream_time, valence=r.valence,
                         arousal=r.arousal, valence_raw=r.valence_raw, arousal_raw=r.arousal_raw, quadrant=r.quadrant,
                         model=runner.card.model_id, latency_ms={k: round(v, 3) for k, v in r.latency_ms().items()},
                         dropped_samples=0, confidence=r.confidence, active=r.active)


def record_file(root: str | Path, audio: str | Path = EXAMPLE_AUDIO, markers: Sequence[tuple[float, str]] =
                EXAMPLE_MARKERS, model: str | None = None, client: str | None = "P-07",
                notes: str | None = "example session: the bundled recording, tracked as a file") -> int:
    """Track ``audio`` into a new session in ``root`` with ``markers`` set as their times pass; return its id."""
    from emotrack.inference import ModelRunner

    runner = ModelRunner(model, provider="cpu")
    start = time.time()
    store = SessionStore.create(root, model=runner.card.model_id, model_hash=file_sha256(runner.path), device="cpu",
                                settings={"file": Path(audio).name, "smoothing": DEFAULT_SMOOTHING,
                                          "smoothing_params": {}},
                                hop_s=runner.card.hop_s, client=client, notes=notes)
    pending = sorted(markers)
    for msg in hop_messages(audio, model, start):
        while pending and pending[0][0] <= msg.stream_time:
            t, label = pending.pop(0)
            store.add_marker(label, wall_time=start + t, stream_time=t, source="example")
        store.add_hop(msg)
    store.close("end of file")
    return store.session_id


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emotrack.session.example", description=__doc__.split("\n")[0])
    parser.add_argument("png", type=Path, help="where to save the report's main figure (PNG, ~1200 px wide)")
    parser.add_argument("--dir", type=Path, help="session folder to record into (default: a temporary one)")
    parser.add_argument("--report", type=Path, help="also write the whole report here (.html or .pdf)")
    args = parser.parse_args(argv)
    from emotrack.session.read import load_session
    from emotrack.session.report import save_summary_png, write_report

    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        session = load_session(root, record_file(root))
        args.png.parent.mkdir(parents=True, exist_ok=True)
        print(f"wrote {save_summary_png(session, args.png)}")
        if args.report:
            print("wrote {} and {}".format(*write_report(session, args.report)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
