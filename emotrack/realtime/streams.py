"""Many streams in one process with one batched computation per hop tick.

Why: a process that tracks N inputs (the channels of an interface, several rooms) with N
:class:`~emotrack.realtime.tracker.Tracker` objects makes 2N network calls per hop; with musicnn the
front end is most of the cost, so batching only the model does not help. :class:`MultiTracker` keeps each
stream's own resampler, hop accumulator, front-end state, context and smoother, and computes the hops that
are complete at the same time with one front-end call (:meth:`FrontEnd.process_many`) and one model call.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence

import numpy as np

from emotrack.audio import rms_dbfs
from emotrack.inference import ModelRunner
from emotrack.realtime.smoothing import Smoother
from emotrack.realtime.tracker import HopResult, Tracker, infer

__all__ = ["MultiTracker"]


class MultiTracker:
    """N streams, one model: blocks in per stream, hop results out per stream.

    Parameters
    ----------
    runner : ModelRunner
        The loaded model; every stream gets a copy of its front end (own state, shared network session).
    input_rates : sequence of int
        Sample rate of each stream's blocks (one entry per stream).
    smoothers : sequence of Smoother, optional
        One per stream (e.g. ``[make_smoother("ema") for _ in range(n)]``); raw values pass through without.
    clock : callable
        Time source for latency stamps.
    """

    def __init__(
        self,
        runner: ModelRunner,
        input_rates: Sequence[int],
        smoothers: Sequence[Smoother] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not input_rates:
            raise ValueError("a MultiTracker needs at least one stream")
        if smoothers is not None and len(smoothers) != len(input_rates):
            raise ValueError(f"{len(smoothers)} smoothers for {len(input_rates)} streams")
        self.runner = runner
        self.clock = clock
        self.streams: list[Tracker] = []
        for i, rate in enumerate(input_rates):
            tracker = Tracker(runner, rate, smoothers[i] if smoothers else None, clock)
            tracker.frontend = copy.deepcopy(runner.frontend)
            tracker.reset()
            self.streams.append(tracker)

    def __len__(self) -> int:
        return len(self.streams)

    def reset(self, stream: int | None = None) -> None:
        """Start one stream (or all) afresh."""
        for tracker in self.streams if stream is None else [self.streams[stream]]:
            tracker.reset()

    def process(self, blocks: Sequence[np.ndarray | None], t_last: float | None = None) -> list[list[HopResult]]:
        """Feed one block per stream (``None``: nothing new for that stream); returns each stream's new results.

        Hops completed by this call are computed in rounds: round ``r`` holds the ``r``-th new hop of every
        stream that has one, as one front-end call and one model call.
        """
        if len(blocks) != len(self.streams):
            raise ValueError(f"{len(blocks)} blocks for {len(self.streams)} streams")
        t_last = self.clock() if t_last is None else t_last
        pending = [tr.cut_hops(b, t_last) if b is not None else [] for tr, b in zip(self.streams, blocks, strict=True)]
        results: list[list[HopResult]] = [[] for _ in self.streams]
        for r in range(max(map(len, pending))):
            members = [i for i, hops in enumerate(pending) if len(hops) > r]
            for i, result in zip(members, self._run_round([(i, *pending[i][r]) for i in members]), strict=True):
                results[i].append(result)
        return results

    def _run_round(self, hops: list[tuple[int, np.ndarray, float]]) -> list[HopResult]:
        t_ready = self.clock()
        trackers = [self.streams[i] for i, _, _ in hops]
        frontends = [tr.frontend for tr in trackers]
        audio = np.stack([h for _, h, _ in hops])
        frames = self.runner.normalizer(type(frontends[0]).process_many(frontends, audio))
        return infer(trackers, frames, [t for _, _, t in hops], t_ready, [rms_dbfs(h) for h in audio])
