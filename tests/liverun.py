"""A real ``emotrack run`` in a subprocess for tests: started on the bundled example, its printed address parsed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import REPO, default_stop_signals, free_port

URL_LINE = re.compile(r"emotrack: dashboard and stream at (\S+)")


class LiveRun:
    """``emotrack run`` on the bundled example, looping, until the test ends; ``url`` is the printed address."""

    def __init__(self, example: Path, *args: str, host: str = "127.0.0.1", loop: bool = True, **popen) -> None:
        self.port = free_port()
        self.host = host
        cmd = [sys.executable, "-m", "emotrack", "run", "--file", str(example), *(["--loop"] if loop else []),
               "--no-osc", "--no-osc-in", "--quiet", "--ws-host", host, "--ws-port", str(self.port), *args]
        popen.setdefault("stdout", subprocess.DEVNULL)
        # faulthandler: a run that hangs can be made to print every thread's stack (see wait())
        popen["env"] = {**(popen.get("env") or os.environ), "PYTHONFAULTHANDLER": "1"}
        popen.setdefault("preexec_fn", default_stop_signals)
        self.proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True, **popen)
        self.stderr: list[str] = []
        self.url: str | None = None
        ready = threading.Event()

        def read() -> None:
            for line in self.proc.stderr:
                self.stderr.append(line)
                found = URL_LINE.search(line)
                if found and self.url is None:
                    self.url = found.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(90) or self.url is None:
            self.close()
            raise AssertionError("emotrack run printed no address:\n" + "".join(self.stderr))

    @property
    def token(self) -> str | None:
        found = re.search(r"token=([\w-]+)", self.url or "")
        return found.group(1) if found else None

    def wait(self, timeout: float) -> int:
        """The exit status; a run still going after ``timeout`` s fails the test with its threads' stacks."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler dumps every thread, then the process dies
            self.proc.wait(10)
            time.sleep(0.2)  # the reader thread takes the last lines
            raise AssertionError(f"emotrack run did not end within {timeout} s:\n" + "".join(self.stderr)) from None

    def close(self) -> None:
        """SIGTERM (a clean stop), SIGKILL if it does not end in 20 s."""
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
