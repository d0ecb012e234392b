"""The ``emotrack`` command (and ``python -m emotrack``): the command-line interface, imported with the stop
signals held (:mod:`emotrack.stopsignals`)."""

from __future__ import annotations

from emotrack.stopsignals import held


def main() -> int:
    """Import :mod:`emotrack.cli` (numpy and the other C extensions it loads) with the stop signals held, then run it.

    A signal that came during the import is handled as the hold ends, before any command has started: Ctrl-C
    exits 130, SIGTERM/SIGHUP end the process the default way.
    """
    try:
        with held():
            from emotrack.cli import main as cli_main
    except KeyboardInterrupt:
        return 130
    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
