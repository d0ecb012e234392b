"""Live audio input through sounddevice (PortAudio): device listing, device lookup and a capture source.

:class:`CaptureSource` follows the same source protocol as :class:`~emotrack.realtime.sources.FileSource`:
iterating it yields ``(block[frames, channels] float32, t_last)`` pairs, ``t_last`` being the
``time.perf_counter()`` arrival time of the block's last frame. It delivers audio exactly as the device
gives it (native rate, all requested channels); downmixing and resampling happen in the
:class:`~emotrack.realtime.tracker.Tracker`, so live and file input share one code path.

The PortAudio callback runs at real-time priority and must never block: it only copies ``indata`` into a
preallocated lock-free :class:`~emotrack.realtime.ringbuffer.RingBuffer` and counts status flags in plain
ints. The consumer (the iterator) polls the ring with short sleeps.

``sounddevice`` is imported lazily: it raises ``OSError`` at import when the PortAudio library is missing,
and importing this module (e.g. for ``emotrack analyze``) must work on such machines.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

from emotrack.errors import DeviceError
from emotrack.realtime.ringbuffer import RingBuffer

__all__ = ["CaptureSource", "list_input_devices", "resolve_input_device"]

NO_DEVICE_MESSAGE = "no audio input device found (use --file PATH to track a file)"

# PortAudio status bits (portaudio.h), used to turn sounddevice's CallbackFlags into a plain int.
_FLAG_BITS = {
    "input_underflow": 0x01,
    "input_overflow": 0x02,
    "output_underflow": 0x04,
    "output_overflow": 0x08,
    "priming_output": 0x10,
}
_MAX_ADC_AGE = 10.0
"""An ADC timestamp claiming the first frame is older than this (s), or in the future, is ignored as bogus."""


def _sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio library into a one-line :class:`DeviceError`."""
    try:
        import sounddevice
    except OSError as exc:  # 'PortAudio library not found'
        raise DeviceError(
            f"audio input unavailable: {exc} (install PortAudio, e.g. `apt install libportaudio2`, "
            "or use --file PATH to track a file)"
        ) from None
    return sounddevice


def _query(sd: ModuleType) -> tuple[list[dict[str, Any]], list[str], int | None]:
    """All devices, host API names and the default input index (``None`` if PortAudio has none)."""
    try:
        devices = [dict(d) for d in sd.query_devices()]
        hostapis = [str(h["name"]) for h in sd.query_hostapis()]
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot list audio devices: {exc}") from None
    try:
        default = int(sd.query_devices(kind="input")["index"])
    except (sd.PortAudioError, ValueError, KeyError, TypeError):
        default = None
    return devices, hostapis, default


def _entry(dev: dict[str, Any], hostapis: list[str], default: int | None) -> dict[str, Any]:
    api = int(dev["hostapi"])
    return {
        "index": int(dev["index"]),
        "name": str(dev["name"]),
        "hostapi": hostapis[api] if 0 <= api < len(hostapis) else str(api),
        "max_input_channels": int(dev["max_input_channels"]),
        "default_samplerate": float(dev["default_samplerate"]),
        "default": int(dev["index"]) == default,
    }


def list_input_devices() -> list[dict[str, Any]]:
    """Describe the devices that can record.

    Returns
    -------
    list of dict
        One dict per device with input channels, ordered by index: ``index``, ``name``, ``hostapi`` (host
        API name, e.g. ``"ALSA"``), ``max_input_channels``, ``default_samplerate`` and ``default`` (True for
        PortAudio's default input). Empty when there is no input device.

    Raises
    ------
    DeviceError
        PortAudio is missing or cannot enumerate devices.
    """
    sd = _sounddevice()
    devices, hostapis, default = _query(sd)
    return [_entry(d, hostapis, default) for d in devices if int(d["max_input_channels"]) > 0]


def resolve_input_device(spec: str | int | None) -> int:
    """Turn a ``--device`` value into a PortAudio device index.

    Parameters
    ----------
    spec : str, int or None
        ``None`` for the default input; an index (int or digit string); otherwise a case-insensitive
        substring of the device name. An exact name match wins over substring matches (ALSA lists both
        ``pulse`` and names containing it); among several matches the default host API's device is taken,
        then the lowest index, because the same physical device often appears once per host API.

    Raises
    ------
    DeviceError
        No input device exists, the index is not an input device, or no name matches.
    """
    sd = _sounddevice()
    devices, hostapis, default = _query(sd)
    inputs = [d for d in devices if int(d["max_input_channels"]) > 0]
    if not inputs:
        raise DeviceError(NO_DEVICE_MESSAGE)
    by_index = {int(d["index"]): d for d in inputs}
    if spec is None:
        # No PortAudio default (can happen with odd ALSA setups): take the first input rather than fail.
        return default if default in by_index else int(inputs[0]["index"])
    text = str(spec).strip()
    if isinstance(spec, int) or text.isdigit():
        index = int(text)
        if index not in by_index:
            what = "is not an input device" if any(int(d["index"]) == index for d in devices) else "does not exist"
            raise DeviceError(f"audio device {index} {what} (see `emotrack devices`, or use --file PATH)")
        return index
    key = text.lower()
    exact = [d for d in inputs if str(d["name"]).lower() == key]
    matches = exact or [d for d in inputs if key in str(d["name"]).lower()]
    if not matches:
        raise DeviceError(f"no input device matches {text!r} (see `emotrack devices`, or use --file PATH)")
    default_api = int(by_index[default]["hostapi"]) if default in by_index else None
    preferred = [d for d in matches if int(d["hostapi"]) == default_api] or matches
    return int(preferred[0]["index"])


class _Recorder:
    """The PortAudio callback: copy into the ring, stamp arrival time, count status flags.

    Kept apart from :class:`CaptureSource` so its real-time rules are easy to audit (and to test without
    a device). It allocates no arrays, takes no locks and never prints: ``ring.write`` copies into
    preallocated memory, and the counters are plain int updates, atomic under the GIL.

    Parameters
    ----------
    ring : RingBuffer
        Destination, sized for the stream's channels.
    sample_rate : int
        Stream rate, to time the block's last frame from its first.
    clock : callable
        ``time.perf_counter``.
    """

    def __init__(self, ring: RingBuffer, sample_rate: int, clock: Any = time.perf_counter) -> None:
        self.ring = ring
        self.frame_s = 1.0 / float(sample_rate)
        self.clock = clock
        self.callbacks = 0
        self.frames = 0
        self.input_overflows = 0
        self.input_underflows = 0
        self.status_flags = 0
        self.adc_timestamps = 0  # callbacks whose arrival time came from PortAudio's ADC time
        self.t_first_callback = math.nan
        self.stream_offset = math.nan  # perf_counter() - stream time, set by CaptureSource at start

    def __call__(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        now = self.clock()
        span = (frames - 1) * self.frame_s
        # Arrival time of the first frame. PortAudio's ADC time is in the stream clock: map it by its age
        # relative to the callback's currentTime (same clock), else via the offset measured at start.
        # 0.0 means "unknown" (PortAudio's convention); fall back to "the block ends now", which is an
        # upper bound: every frame has arrived by the time the callback runs.
        t_first = now - span
        adc = float(time_info.inputBufferAdcTime) if time_info is not None else 0.0
        if adc > 0.0:
            current = float(time_info.currentTime)
            mapped = now - (current - adc) if current > 0.0 else adc + self.stream_offset
            if now - _MAX_ADC_AGE <= mapped <= now:
                t_first = mapped
                self.adc_timestamps += 1
        t_last = min(t_first + span, now)
        self.ring.write(indata, t_last)
        if status:
            for name, bit in _FLAG_BITS.items():
                if getattr(status, name, False):
                    self.status_flags |= bit
            if status.input_overflow:
                self.input_overflows += 1
            if status.input_underflow:
                self.input_underflows += 1
        if self.callbacks == 0:
            self.t_first_callback = now
        self.frames += frames
        self.callbacks += 1


class CaptureSource:
    """Record from an input device; same iteration protocol as :class:`FileSource`.

    Parameters
    ----------
    device : str, int or None
        Index, case-insensitive name substring or ``None`` (default input); see :func:`resolve_input_device`.
    samplerate : int, optional
        Stream rate; defaults to the device's own rate, so the OS does not resample (the tracker does, once).
    channels : int, optional
        Channels to record; defaults to ``min(2, device maximum)`` because virtual devices such as ALSA
        ``pulse`` report 32 inputs and PortAudio would otherwise open all of them.
    blocksize : int
        Frames per callback; 0 lets PortAudio choose (the most robust against overflows).
    latency : float or {"low", "high"}
        PortAudio input latency; "high" trades a little delay for fewer dropouts.
    buffer_seconds : float
        Ring buffer length: how long the consumer may stall before audio is lost (counted in ``dropped``).
    stop : threading.Event, optional
        Set it (from any thread) to end the iteration.
    stall_timeout : float
        Seconds without any new audio after which the stream counts as dead (:class:`DeviceError`).
    start_timeout : float
        The same for the first audio after start: it may take over 2 s to arrive (PulseAudio).

    Notes
    -----
    The stream opens on :meth:`start` (or ``with``, or when iteration begins) and is closed by
    :meth:`close`, by leaving the ``with`` block, or when an iteration that opened it ends, so it is never
    left running. Attributes ``input_overflows``/``input_underflows`` count callbacks with that flag;
    ``status_flags`` ORs all PortAudio status bits seen; ``dropped`` counts frames lost in the ring.
    """

    def __init__(
        self,
        device: str | int | None = None,
        samplerate: int | None = None,
        channels: int | None = None,
        blocksize: int = 0,
        latency: float | str = "high",
        buffer_seconds: float = 20.0,
        stop: threading.Event | None = None,
        stall_timeout: float = 5.0,
        start_timeout: float = 10.0,
    ) -> None:
        sd = _sounddevice()
        self.device = resolve_input_device(device)
        try:
            info = sd.query_devices(self.device)
            hostapi = sd.query_hostapis(info["hostapi"])["name"]
        except sd.PortAudioError as exc:
            raise DeviceError(f"cannot query audio device {self.device}: {exc}") from None
        self.device_name = str(info["name"])
        self.hostapi = str(hostapi)
        max_channels = int(info["max_input_channels"])
        self.channels = int(channels) if channels else min(2, max_channels)
        if not 1 <= self.channels <= max_channels:
            raise DeviceError(
                f"device {self.device_name!r} records at most {max_channels} channels, not {self.channels}"
            )
        self.sample_rate = int(samplerate) if samplerate else int(round(info["default_samplerate"]))
        if self.sample_rate <= 0:
            raise DeviceError(f"invalid sample rate {self.sample_rate} for device {self.device_name!r}")
        self.blocksize = int(blocksize)
        self.latency = latency
        self.stop = stop or threading.Event()
        self.stall_timeout = float(stall_timeout)
        self.start_timeout = float(start_timeout)
        self.ring = RingBuffer(max(1, int(buffer_seconds * self.sample_rate)), self.channels)
        self.recorder = _Recorder(self.ring, self.sample_rate)
        self._stream: Any = None
        self._died = threading.Event()

    # -- protocol attributes -------------------------------------------------------------------------------
    @property
    def description(self) -> str:
        return f"device {self.device_name!r} ({self.hostapi}), {self.sample_rate} Hz, {self.channels} ch"

    @property
    def dropped(self) -> int:
        """Frames lost because the consumer fell more than ``buffer_seconds`` behind."""
        return self.ring.dropped

    @property
    def status_flags(self) -> int:
        """PortAudio status bits seen so far, ORed (``0x2`` = input overflow, ``0x1`` = input underflow)."""
        return self.recorder.status_flags

    @property
    def input_overflows(self) -> int:
        return self.recorder.input_overflows

    @property
    def input_underflows(self) -> int:
        return self.recorder.input_underflows

    @property
    def callbacks(self) -> int:
        """Callbacks so far; > 0 once audio flows (tests wait for it before playing anything)."""
        return self.recorder.callbacks

    @property
    def stream_latency(self) -> float | None:
        """PortAudio's reported input latency in seconds, once the stream is open."""
        return None if self._stream is None else float(self._stream.latency)

    @property
    def active(self) -> bool:
        return self._stream is not None and bool(self._stream.active)

    # -- life cycle ----------------------------------------------------------------------------------------
    def start(self) -> CaptureSource:
        """Open and start the stream (no-op if already running)."""
        if self._stream is not None:
            return self
        sd = _sounddevice()
        self._died.clear()
        try:
            stream = sd.InputStream(
                device=self.device,
                samplerate=self.sample_rate,
                channels=self.channels,
                dtype="float32",
                blocksize=self.blocksize,
                latency=self.latency,
                callback=self.recorder,
                finished_callback=self._died.set,
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise DeviceError(f"cannot open {self.description}: {exc}") from None
        self._stream = stream
        self.recorder.stream_offset = time.perf_counter() - float(stream.time)
        try:
            stream.start()
        except sd.PortAudioError as exc:
            self.close()
            raise DeviceError(f"cannot start {self.description}: {exc}") from None
        return self

    def close(self) -> None:
        """Stop and close the stream; safe to call twice."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.abort(ignore_errors=True)
        finally:
            stream.close(ignore_errors=True)

    def __enter__(self) -> CaptureSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_first_callback(self, timeout: float = 5.0) -> bool:
        """Block until audio starts flowing (True) or ``timeout`` s pass (False)."""
        deadline = time.perf_counter() + timeout
        while self.recorder.callbacks == 0:
            left = deadline - time.perf_counter()
            if left <= 0 or self.stop.wait(min(left, 0.01)):
                return self.recorder.callbacks > 0
        return True

    # -- consumer ------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        owns = self._stream is None
        self.start()
        # Poll period: short enough to add little latency, long enough not to spin (PortAudio delivers a
        # block every few ms to tens of ms).
        poll = 0.01 if self.blocksize <= 0 else min(0.01, 0.5 * self.blocksize / self.sample_rate)
        last_audio = time.perf_counter()
        timeout = self.start_timeout if self.recorder.callbacks == 0 else self.stall_timeout
        try:
            while not self.stop.is_set():
                got = self.ring.read()
                now = time.perf_counter()
                if got is not None:
                    block, t_last = got
                    if not math.isfinite(t_last):  # stamp overwritten while we lagged: now is an upper bound
                        t_last = now
                    last_audio = now
                    timeout = self.stall_timeout
                    yield block, t_last
                    continue
                stream = self._stream
                if stream is None:  # closed from elsewhere
                    return
                if self._died.is_set() or not stream.active:
                    raise DeviceError(f"audio input stopped: {self.description} is no longer delivering audio")
                left = last_audio + timeout - now
                if left <= 0:
                    raise DeviceError(f"audio input stalled: no audio from {self.description} for {timeout:.0f} s")
                self.stop.wait(min(poll, left))
        finally:
            if owns:
                self.close()
