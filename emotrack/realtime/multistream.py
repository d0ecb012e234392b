"""Several inputs tracked as separate streams in one process: the channels of an interface, network streams.

:class:`StreamSet` turns its inputs into one iterator of *ticks*, ``(blocks, t_last)`` with one entry per stream
(``None`` where that stream has nothing new), which the live worker hands to
:class:`~emotrack.realtime.streams.MultiTracker`: hops that complete together across streams are computed in one
batched front-end and model call. Each input is read on its own thread into one queue, so an input that stalls
or dies delays only itself.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from emotrack.errors import ConfigError

__all__ = ["Input", "StreamSet", "parse_channels"]


def parse_channels(text: str, available: int | None = None) -> list[int]:
    """``"1,2,5-8"`` (1-based, as interfaces label them) to sorted 0-based indices.

    Raises
    ------
    ConfigError
        For a malformed list, a channel below 1, or one beyond ``available``.
    """
    chosen: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        low, sep, high = part.partition("-")
        try:
            first, last = int(low), int(high) if sep else int(low)
        except ValueError:
            raise ConfigError(f"--channels {text!r}: expected numbers and ranges such as 1,2,5-8") from None
        if first < 1 or last < first:
            raise ConfigError(f"--channels {text!r}: channels count from 1 and ranges go up ({part!r})")
        chosen.update(range(first - 1, last))
    if available is not None and max(chosen) >= available:
        raise ConfigError(f"--channels {text!r}: the input has {available} channels")
    return sorted(chosen)


def _split(block: np.ndarray, channels: list[int] | None) -> list[np.ndarray]:
    """The block as one stream, or one mono stream per chosen channel."""
    if channels is None:
        return [block]
    return [np.ascontiguousarray(block[:, c]) for c in channels]


@dataclass
class Input:
    """One source and the streams it feeds: ``channels`` None = one stream of its mixed-down audio."""

    source: object
    names: list[str]
    channels: list[int] | None = None


class StreamSet:
    """The streams of several inputs as one iterator of ticks.

    Parameters
    ----------
    inputs : sequence of Input
        Each input's source is entered (opened) by the set and read on its own thread.
    stop : threading.Event
        Ends every input.
    """

    def __init__(self, inputs: Sequence[Input], stop: threading.Event) -> None:
        self.inputs = list(inputs)
        self.stop = stop
        self.names = [name for i in self.inputs for name in i.names]
        if len(set(self.names)) != len(self.names):
            raise ConfigError(f"stream names must differ: {', '.join(self.names)}")
        self._first = [sum(len(i.names) for i in self.inputs[:k]) for k in range(len(self.inputs))]
        self._queue: queue.Queue = queue.Queue(maxsize=1000)
        self._stack = contextlib.ExitStack()
        self.ended: set[str] = set()
        """Streams whose input has ended or failed; the others go on."""
        self.errors: dict[str, str] = {}

    @property
    def rates(self) -> list[int]:
        return [i.source.sample_rate for i in self.inputs for _ in i.names]

    def source_of(self, stream: int):
        """The source feeding stream number ``stream`` (for its dropped-sample count)."""
        k = max(k for k, first in enumerate(self._first) if first <= stream)
        return self.inputs[k].source

    @property
    def description(self) -> str:
        return "; ".join(f"{getattr(i.source, 'description', i.source)} -> {', '.join(i.names)}" for i in self.inputs)

    def __enter__(self) -> StreamSet:
        for k, item in enumerate(self.inputs):
            self._stack.enter_context(item.source)
            threading.Thread(target=self._read, args=(k,), name=f"input {k}", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._stack.close()

    def _read(self, k: int) -> None:
        item = self.inputs[k]
        try:
            for block, t_last in item.source:
                self._queue.put((k, _split(block, item.channels), t_last))
                if self.stop.is_set():
                    break
        except Exception as exc:  # a dead input ends its streams only
            self.errors[", ".join(item.names)] = str(exc)
        finally:
            self._queue.put((k, None, 0.0))

    def __iter__(self) -> Iterator[tuple[list[np.ndarray | None], float]]:
        alive = len(self.inputs)
        while alive and not self.stop.is_set():
            try:
                items = [self._queue.get(timeout=0.2)]
            except queue.Empty:
                continue
            while True:  # everything that has arrived meanwhile joins this tick
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            blocks: list[list[np.ndarray]] = [[] for _ in self.names]
            t_last = 0.0
            for k, parts, t in items:
                if parts is None:
                    alive -= 1
                    self.ended.update(self.inputs[k].names)
                    continue
                for j, part in enumerate(parts):
                    blocks[self._first[k] + j].append(part)
                t_last = max(t_last, t)
            if any(blocks):
                yield [np.concatenate(b) if b else None for b in blocks], t_last
