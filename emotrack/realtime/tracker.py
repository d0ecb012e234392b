"""The hop pipeline shared by file analysis and live tracking.

:class:`Tracker` takes audio blocks exactly as a source delivers them (any rate, any channel count)
and returns one :class:`HopResult` per completed 0.5 s hop. The chain is

    downmix -> streaming resampler -> hop accumulator -> front end (new audio only)
    -> normalisation -> frame context -> ONNX Runtime -> activity gate -> smoother

The activity gate (:mod:`emotrack.realtime.activity`) gives each hop a ``confidence`` and an ``active``
flag from the model's ``music`` output and the hop's level. While a stream is inactive its quadrant is 0
("no music") and the smoother is fed the neutral centre (0, 0), so published values glide to the centre
instead of holding an emotion for a silent room; the raw values stay the model's.

Hops are cut by sample count, never by wall clock, so a paced file, a file read as fast as possible
and the same audio from a sound card give the same hop boundaries and the same numbers.

``batch_hops`` trades latency for throughput: with 1 (live, ``run``) each hop is computed as soon as it
is complete; offline analysis collects up to 64 hops and runs the front end and the model once on all of
them (:meth:`FrontEnd.process_hops`, a batched model call), which equals the hop-by-hop numbers up to float
rounding. :class:`~emotrack.realtime.streams.MultiTracker` batches across streams instead.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from emotrack.audio import Resampler, downmix, rms_dbfs
from emotrack.context import FrameContext
from emotrack.export.metadata import OUTPUT_VA
from emotrack.inference import ModelRunner
from emotrack.realtime.activity import MUSIC_OUTPUT, ActivityGate
from emotrack.realtime.messages import quadrant_of
from emotrack.realtime.smoothing import Passthrough, Smoother

__all__ = ["MAX_SAMPLE", "HopResult", "Tracker", "infer"]

logger = logging.getLogger(__name__)

MAX_SAMPLE = 1e3
"""Input samples are clipped to +-this (60 dB over full scale): float files may hold anything, and squares of
values near 1e19 overflow the front end's power spectrum to inf and the model's output to NaN."""


@dataclass
class HopResult:
    """One hop's prediction and its timing (``perf_counter`` seconds).

    ``quadrant`` is 1..4 of the smoothed values, or 0 while ``active`` is false (no music); ``confidence``
    in [0, 1] says how sure the tracker is that it hears music (:mod:`emotrack.realtime.activity`), and
    ``level_db`` is the hop's RMS in dBFS; ``valid`` is false where the model returned NaN or infinity
    (the hop then repeats the last values, inactive). ``t_audio`` is when the hop's last sample reached the process
    (its arrival time at the source), ``t_ready`` when the hop's audio was complete and processing began;
    ``t_features``, ``t_inference`` and ``t_smoothing`` when each stage finished.
    """

    seq: int
    stream_time: float
    valence_raw: float
    arousal_raw: float
    valence: float
    arousal: float
    quadrant: int
    t_audio: float
    t_ready: float
    t_features: float
    t_inference: float
    t_smoothing: float
    extras: dict[str, list[float]] = field(default_factory=dict)
    confidence: float = 1.0
    active: bool = True
    level_db: float = 0.0
    valid: bool = True

    def latency_ms(self, t_send: float | None = None) -> dict[str, float]:
        """Per-stage latency in ms; ``total`` runs from the last sample's arrival to ``t_send`` (or smoothing)."""
        end = self.t_smoothing if t_send is None else t_send
        return {
            "capture": 1e3 * (self.t_ready - self.t_audio),
            "features": 1e3 * (self.t_features - self.t_ready),
            "inference": 1e3 * (self.t_inference - self.t_features),
            "smoothing": 1e3 * (self.t_smoothing - self.t_inference),
            "total": 1e3 * (end - self.t_audio),
        }


class Tracker:
    """Audio blocks in, hop results out; the one code path for ``analyze`` and ``run``.

    Parameters
    ----------
    runner : ModelRunner
        Loaded model (brings its front end and normalisation).
    input_rate : int
        Sample rate of the blocks the source delivers.
    smoother : Smoother, optional
        Causal smoother for the published values; raw values are always kept too.
    clock : callable
        Time source for latency stamps (``time.perf_counter``).
    batch_hops : int
        Complete hops to collect before computing them in one batch (1: each hop at once).
    """

    def __init__(
        self,
        runner: ModelRunner,
        input_rate: int,
        smoother: Smoother | None = None,
        clock: Callable[[], float] = time.perf_counter,
        batch_hops: int = 1,
    ) -> None:
        if batch_hops < 1:
            raise ValueError(f"batch_hops must be at least 1, got {batch_hops}")
        self.runner = runner
        self.batch_hops = int(batch_hops)
        self.input_rate = int(input_rate)
        self.smoother = smoother or Passthrough()
        self.clock = clock
        self.frontend = runner.frontend
        self.sample_rate = self.frontend.sample_rate
        self.hop_length = self.frontend.hop_length
        self.hop_s = self.hop_length / self.sample_rate
        self._hop = np.zeros(self.hop_length, np.float32)
        self._context = FrameContext(runner.card.context_frames, self.frontend.frame_shape)
        self.activity = ActivityGate()
        self.reset()

    def reset(self) -> None:
        """Start a new stream: clear resampler, front end, context and smoother state."""
        self._resampler = Resampler(self.input_rate, self.sample_rate)
        self._fill = 0
        self._inputs = 0  # input-rate samples received
        self._outputs = 0  # model-rate samples produced
        self._pending: list[tuple[np.ndarray, float]] = []  # complete hops not computed yet, with t_audio
        self.seq = 0
        self.frontend.reset()
        self._context.reset()
        self.activity.reset()
        self._last = (0.0, 0.0)
        self.invalid_hops = 0
        self.smoother.reset()

    def process(self, block: np.ndarray, t_last: float | None = None, last: bool = False) -> list[HopResult]:
        """Feed one block ``(frames, channels)`` or ``(frames,)``; ``t_last`` = arrival of its last frame.

        ``last=True`` flushes the resampler at end of stream (see :meth:`finish`); a final partial hop is dropped.
        """
        self._pending += self.cut_hops(block, t_last, last)
        results: list[HopResult] = []
        while len(self._pending) >= self.batch_hops or (last and self._pending):
            batch, self._pending = self._pending[: self.batch_hops], self._pending[self.batch_hops :]
            results += self._run_hops(batch)
        return results

    def finish(self) -> list[HopResult]:
        """End of stream: flush the resampler's tail, which may complete one more hop, and any collected hops."""
        return self.process(np.zeros((0, 1), np.float32), last=True)

    def cut_hops(
        self, block: np.ndarray, t_last: float | None = None, last: bool = False
    ) -> list[tuple[np.ndarray, float]]:
        """Downmix, resample and cut a block into complete hops: ``(hop audio, arrival of its last sample)``."""
        t_last = self.clock() if t_last is None else t_last
        # One pass over the block: NaN fails the comparison too. A glitching driver's NaN/inf must not poison
        # the model state, and 1e19 in a float file would overflow the front end's power spectrum.
        if block.size and not np.abs(block).max() <= MAX_SAMPLE:
            block = np.clip(np.nan_to_num(block, nan=0.0, posinf=1.0, neginf=-1.0), -MAX_SAMPLE, MAX_SAMPLE)
        self._inputs += len(block)
        audio = self._resampler.process(downmix(block), last=last)
        hops = []
        pos = 0
        while pos < len(audio):
            take = min(self.hop_length - self._fill, len(audio) - pos)
            self._hop[self._fill : self._fill + take] = audio[pos : pos + take]
            self._fill += take
            pos += take
            self._outputs += take
            if self._fill == self.hop_length:
                # arrival time of the hop's last sample, from its position in the input block
                behind = self._inputs - self._outputs * self.input_rate / self.sample_rate
                hops.append((self._hop.copy(), t_last - max(0.0, behind) / self.input_rate))
                self._fill = 0
        return hops

    def _run_hops(self, hops: list[tuple[np.ndarray, float]]) -> list[HopResult]:
        """Front end on consecutive hops of this stream in one call, then the model on their contexts at once."""
        t_ready = self.clock()
        audio = np.stack([h for h, _ in hops])
        frames = self.runner.normalizer(self.frontend.process_hops(audio))
        return infer([self] * len(hops), frames, [t for _, t in hops], t_ready, [rms_dbfs(h) for h in audio])

    def _finish_hop(self, outputs: dict[str, np.ndarray], row: int, t_audio: float, t_ready: float,
                    t_features: float, t_inference: float, level_db: float) -> HopResult:
        """Gate and smooth row ``row`` of a model call's outputs into this stream's next :class:`HopResult`."""
        v_raw, a_raw = (float(x) for x in outputs[OUTPUT_VA][row])
        music = float(outputs[MUSIC_OUTPUT][row].ravel()[0]) if MUSIC_OUTPUT in outputs else None
        valid = math.isfinite(v_raw) and math.isfinite(a_raw)
        if valid:
            confidence, active = self.activity.process(music, level_db)
            v, a = self.smoother.process(v_raw, a_raw) if active else self.smoother.process(0.0, 0.0)
        else:  # the model returned NaN/inf: hold the last values, keep every state, count it, go on
            self.invalid_hops += 1
            if self.invalid_hops == 1:
                logger.warning("the model returned a non-finite value at hop %d: holding the last values", self.seq)
            v_raw, a_raw = v, a = self._last
            confidence, active = 0.0, False
        self._last = (v, a)
        t_smoothing = self.clock()
        extras = {k: [float(x) for x in np.ravel(val[row])] for k, val in outputs.items() if k != OUTPUT_VA}
        result = HopResult(
            seq=self.seq,
            stream_time=(self.seq + 1) * self.hop_s,
            valence_raw=v_raw,
            arousal_raw=a_raw,
            valence=v,
            arousal=a,
            quadrant=quadrant_of(v, a) if active else 0,
            t_audio=t_audio,
            t_ready=t_ready,
            t_features=t_features,
            t_inference=t_inference,
            t_smoothing=t_smoothing,
            extras=extras,
            confidence=confidence,
            active=active,
            level_db=level_db,
            valid=valid,
        )
        self.seq += 1
        return result


def infer(
    trackers: list[Tracker], frames: np.ndarray, t_audios: list[float], t_ready: float, levels: list[float]
) -> list[HopResult]:
    """One model call for normalised front-end frames of several hops: frame ``i`` is the next hop of
    ``trackers[i]`` (the same tracker may come several times, for its consecutive hops), ``levels[i]``
    that hop's RMS in dBFS.

    Each frame enters its tracker's context, the context is taken as it stands then, and every row's
    output is smoothed by its tracker in order. The trackers must share one model.
    """
    first = trackers[0]
    contexts = np.empty((len(trackers), *first._context.frames.shape[1:]), np.float32)
    masks = np.empty((len(trackers), first._context.mask.shape[1]), np.float32)
    for i, (tracker, frame) in enumerate(zip(trackers, frames, strict=True)):
        tracker._context.push(frame)
        contexts[i] = tracker._context.frames[0]
        masks[i] = tracker._context.mask[0]
    t_features = first.clock()
    outputs = first.runner.run(contexts, masks)
    t_inference = first.clock()
    return [tracker._finish_hop(outputs, i, t_audio, t_ready, t_features, t_inference, level)
            for i, (tracker, t_audio, level) in enumerate(zip(trackers, t_audios, levels, strict=True))]
