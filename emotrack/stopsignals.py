"""The stop signals (SIGINT, SIGTERM, SIGHUP) held while emotrack starts up.

Start-up imports C extensions (numpy, ``_ssl`` via asyncio, soxr, onnxruntime), and some of them run Python code
while they initialise. A signal handler's exception raised there does not surface as a stop: it aborts the
process (soxr's C++ initialisation: SIGABRT) or comes out as an unrelated error (``_ssl``: "TypeError: expected a
message argument"). Held, a signal waits in the kernel and is handled the moment the block ends, at a point where
its exception unwinds cleanly. Kept free of heavy imports: the entry point uses it before anything else loads.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)
"""The signals that end a run cleanly once its handlers exist."""

IGNORED_ON_ENTRY = frozenset(s for s in STOP_SIGNALS if signal.getsignal(s) is signal.SIG_IGN)
"""The stop signals this process was started ignoring, read when this module is first imported (the entry point
imports it before anything else). ``nohup`` ignores SIGHUP, and a shell runs a background job (``cmd &`` in a
script) ignoring SIGINT; as in POSIX shells and daemons, a signal ignored on entry stays ignored, so that
``nohup emotrack run`` outlives the terminal it was started from."""

OWN_HANDLED = tuple(s for s in STOP_SIGNALS if s != signal.SIGINT and s not in IGNORED_ON_ENTRY)
"""The stop signals emotrack gives handlers of its own (SIGTERM, SIGHUP), less those ignored on entry. SIGINT is
not among them: Python's KeyboardInterrupt handles it (and leaves it alone when it was ignored on entry)."""


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Hold the stop signals for the block; one that arrived meanwhile is handled as the block ends.

    Nests (the outer block's mask is restored), and does nothing off the main thread or where the platform has
    no ``pthread_sigmask`` (Windows), where signals reach the main thread's handlers only anyway.
    """
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # CPython runs the pending handlers right here
