"""``emotrack sessions`` and ``emotrack report``: the CLI's two session commands (the CLI only parses)."""

from __future__ import annotations

import argparse
import datetime as _dt
import json

from emotrack.session.read import SessionInfo, list_sessions, load_session

__all__ = ["report_main", "sessions_main", "sessions_table"]


def _state(info: SessionInfo) -> str:
    return f"ended ({info.end_reason})" if info.state == "ended" and info.end_reason else info.state


def _duration(s: float) -> str:
    s = int(round(s))
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


def sessions_table(infos: list[SessionInfo]) -> str:
    """The sessions as an aligned text table, start in local time."""
    header = ["id", "start", "duration", "hops", "markers", "model", "client", "state"]
    rows = [[str(i.id), _dt.datetime.fromtimestamp(i.started).strftime("%Y-%m-%d %H:%M:%S"), _duration(i.duration_s),
             str(i.hops), str(i.markers), i.model or "-", i.client or "-", _state(i)] for i in infos]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    right = {0, 2, 3, 4}
    return "\n".join("  ".join(cell.rjust(w) if c in right else cell.ljust(w)
                               for c, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
                     for row in [header, *rows])


def sessions_main(args: argparse.Namespace) -> int:
    """``emotrack sessions DIR [--json]``."""
    infos = list_sessions(args.dir)
    if args.json:
        print(json.dumps([i.as_dict() for i in infos], indent=2))
    elif not infos:
        print(f"no sessions in {args.dir}")
    else:
        print(sessions_table(infos))
    return 0


def report_main(args: argparse.Namespace) -> int:
    """``emotrack report SESSION [--session ID] --out FILE.html|FILE.pdf``."""
    from emotrack.session.report import report_paths, write_report  # matplotlib only for this command

    report_paths(args.out)  # a bad suffix fails before the store is read
    session = load_session(args.store, args.session_id)
    out, csv_path = write_report(session, args.out)
    state = {"recording": " (still recording)", "interrupted": " (interrupted)"}.get(session.info.state, "")
    print(f"session {session.info.id}{state}: {len(session.hops)} hops, {len(session.markers)} markers")
    print(f"wrote {out}")
    print(f"wrote {csv_path}")
    return 0
