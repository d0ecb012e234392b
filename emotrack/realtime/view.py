"""The live terminal view: one line per hop, or a redrawn panel on a TTY."""

from __future__ import annotations

import sys
from typing import TextIO

from emotrack.realtime.tracker import HopResult

QUADRANT_NAMES = {1: "Q1 happy/excited", 2: "Q2 tense/angry", 3: "Q3 sad/depressed", 4: "Q4 calm/relaxed"}


def _bar(x: float, width: int = 21) -> str:
    """A [-1, 1] value as a bar centred on 0."""
    pos = round((max(-1.0, min(1.0, x)) + 1) / 2 * (width - 1))
    return "".join("|" if i == width // 2 and i != pos else ("#" if i == pos else "-") for i in range(width))


class HopView:
    """Prints each hop: valence, arousal, quadrant, per-hop latency and dropped-audio count."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live

    def header(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def update(self, r: HopResult, latency_ms: dict[str, float], dropped: int) -> None:
        line = (
            f"t={r.stream_time:7.1f}s  V {r.valence:+.2f} [{_bar(r.valence)}]  A {r.arousal:+.2f} [{_bar(r.arousal)}]"
            f"  {QUADRANT_NAMES[r.quadrant]:<17}  latency {latency_ms['total']:6.1f} ms"
            f" (feat {latency_ms['features']:.1f} / infer {latency_ms['inference']:.1f})  dropped {dropped}"
        )
        if self.live:
            print("\r\x1b[2K" + line, end="", file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.live:
            print(file=self.stream, flush=True)
