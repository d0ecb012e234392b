"""The live terminal view: one line per hop, or a redrawn panel on a TTY."""

from __future__ import annotations

import sys
from typing import TextIO

from emotrack.realtime.messages import QUADRANT_NAMES
from emotrack.realtime.tracker import HopResult


def state_text(r: HopResult) -> str:
    """``"Q3 sad / low"`` while music is heard, ``"no music"`` otherwise."""
    return f"Q{r.quadrant} {QUADRANT_NAMES[r.quadrant]}" if r.active and r.quadrant else QUADRANT_NAMES[0]


def _bar(x: float, width: int = 21) -> str:
    """A [-1, 1] value as a bar centred on 0."""
    pos = round((max(-1.0, min(1.0, x)) + 1) / 2 * (width - 1))
    return "".join("|" if i == width // 2 and i != pos else ("#" if i == pos else "-") for i in range(width))


class HopView:
    """Prints each hop: valence, arousal, quadrant (or "no music"), confidence, latency and dropped audio."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live

    def header(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def update(self, r: HopResult, latency_ms: dict[str, float], dropped: int) -> None:
        line = (
            f"t={r.stream_time:7.1f}s  V {r.valence:+.2f} [{_bar(r.valence)}]  A {r.arousal:+.2f} [{_bar(r.arousal)}]"
            f"  {state_text(r):<20} conf {r.confidence:4.2f}  latency {latency_ms['total']:6.1f} ms"
            f" (feat {latency_ms['features']:.1f} / infer {latency_ms['inference']:.1f})  dropped {dropped}"
        )
        if self.live:
            print("\r\x1b[2K" + line, end="", file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)

    def marker(self, marker: dict) -> None:
        """A marker on its own line, so it stays visible above the redrawn hop line."""
        line = f"marker {marker['id']} at t={marker['stream_time']:.1f}s ({marker['source']}): {marker['label']}"
        print(("\r\x1b[2K" if self.live else "") + line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.live:
            print(file=self.stream, flush=True)
