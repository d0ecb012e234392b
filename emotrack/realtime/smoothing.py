"""Causal smoothers for the per-hop (valence, arousal) stream.

Raw model outputs jitter from hop to hop; visuals driven by them flicker. Each smoother here is causal
(its output at hop *k* depends only on inputs up to *k*), takes one (valence, arousal) pair per hop and
keeps its own state, so the same object serves a live stream and an offline file. Call ``reset()`` at a
stream restart. Inputs must be finite; they and the outputs are clipped to [-1, 1].

===============  ===============  ===================================================================
name             class            defaults
===============  ===============  ===================================================================
``"none"``       Passthrough      --
``"ema"``        AttackRelease    ``attack=1.0`` s, ``release=2.0`` s
``"one-euro"``   OneEuro          ``min_cutoff=0.05`` Hz, ``beta=2.0``, ``d_cutoff=1.0`` Hz (the default)
``"triangle"``   Triangle         ``taps=13`` (delay 4 hops = 2 s)
===============  ===============  ===================================================================
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections import deque
from typing import Any

from emotrack import HOP_SECONDS
from emotrack.errors import ConfigError

__all__ = [
    "DEFAULT_SMOOTHING", "MAX_TAPS", "SMOOTHERS", "AttackRelease", "OneEuro", "Passthrough", "Smoother", "Triangle",
    "make_smoother", "parse_param",
]

DEFAULT_SMOOTHING = "one-euro"
"""The smoother ``run`` and ``analyze`` use unless told otherwise (with its class's default parameters).

Chosen on medleys of unseen 4Q clips (``bench/results/response.md``): the default model's raw output already
moves little from hop to hop (median 0.013), so what a smoother must not do is delay a real change. With the
default model's CV fold models this one-euro halves the hop-to-hop jitter (0.006) and takes a cut's new sign as
fast as the raw output on arousal (2.5 s median), where ``ema`` (attack 1 s, release 2 s) cut jitter less (0.010)
and added 1.0-1.5 s."""

MAX_TAPS = 1200
"""Longest triangle window: 10 minutes of 0.5 s hops (the window is allocated, and summed every hop)."""


def _clip(x: float) -> float:
    return -1.0 if x < -1.0 else 1.0 if x > 1.0 else x


def _finite(x: float) -> float:
    x = float(x)
    if not math.isfinite(x):
        # A NaN would poison a recursive filter's state for the rest of the stream.
        raise ValueError(f"smoother input must be finite, got {x!r}")
    return _clip(x)


def _number(name: str, value: Any, *, low: float = 0.0, strict: bool = False) -> float:
    """Parse a user-supplied parameter (a number or a CLI string); reject it with a one-line message."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"smoothing parameter {name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x < low or (strict and x == low):
        raise ConfigError(f"smoothing parameter {name} must be {'>' if strict else '>='} {low:g}, got {x:g}")
    return x


class _Filter(ABC):
    """A causal scalar filter; :class:`Smoother` runs one per dimension."""

    @abstractmethod
    def step(self, x: float) -> float: ...

    @abstractmethod
    def reset(self) -> None: ...


class Smoother(ABC):
    """Base class: filters valence and arousal independently with two instances of the same filter."""

    name: str

    def __init__(self) -> None:
        self._filters = (self._filter(), self._filter())

    @abstractmethod
    def _filter(self) -> _Filter: ...

    @abstractmethod
    def describe(self) -> str:
        """Return name and parameters, e.g. ``"ema(attack=1s, release=2s)"``, for logs and the hello."""

    def process(self, valence: float, arousal: float) -> tuple[float, float]:
        """Feed one hop's raw values and return the smoothed ones, all in [-1, 1].

        Raises
        ------
        ValueError
            If an input is NaN or infinite.
        """
        fv, fa = self._filters
        return _clip(fv.step(_finite(valence))), _clip(fa.step(_finite(arousal)))

    def reset(self) -> None:
        """Forget all past inputs; the next output equals the next input."""
        for f in self._filters:
            f.reset()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class _Identity(_Filter):
    def step(self, x: float) -> float:
        return x

    def reset(self) -> None:
        pass


class Passthrough(Smoother):
    """No smoothing: outputs the (clipped) raw values."""

    name = "none"

    def _filter(self) -> _Filter:
        return _Identity()

    def describe(self) -> str:
        return "none"


def _one_pole_alpha(tau: float, dt: float) -> float:
    """Smoothing factor of a one-pole low-pass with time constant ``tau`` sampled every ``dt`` seconds."""
    return 1.0 if tau == 0 else 1.0 - math.exp(-dt / tau)


class _AttackReleaseFilter(_Filter):
    def __init__(self, a_up: float, a_down: float) -> None:
        self._a_up, self._a_down = a_up, a_down
        self._y: float | None = None

    def step(self, x: float) -> float:
        if self._y is None:
            self._y = x
        else:
            a = self._a_up if x > self._y else self._a_down
            self._y += a * (x - self._y)
        return self._y

    def reset(self) -> None:
        self._y = None


class AttackRelease(Smoother):
    """One-pole exponential smoother with separate time constants for rising and falling input.

    Like an envelope follower: a short ``attack`` lets the output follow a rise (input above the current
    output) quickly, a longer ``release`` makes it fall back slowly, so a brief drop in arousal in an
    energetic section does not make visuals collapse. The first input is passed through unchanged,
    so the stream does not ramp up from zero.

    Parameters
    ----------
    attack : float
        Time constant in seconds for rising input; 0 follows rises instantly. Default 1.0 (reaches
        63 % of a step in 1 s, i.e. two hops).
    release : float
        Time constant in seconds for falling input; 0 follows falls instantly. Default 2.0.
    hop_s : float
        Seconds between calls. Default 0.5.
    """

    name = "ema"

    def __init__(self, attack: float = 1.0, release: float = 2.0, hop_s: float = HOP_SECONDS) -> None:
        self.attack = _number("attack", attack)
        self.release = _number("release", release)
        self.hop_s = _number("hop_s", hop_s, strict=True)
        super().__init__()

    def _filter(self) -> _Filter:
        return _AttackReleaseFilter(
            _one_pole_alpha(self.attack, self.hop_s), _one_pole_alpha(self.release, self.hop_s)
        )

    def describe(self) -> str:
        return f"ema(attack={self.attack:g}s, release={self.release:g}s)"


class _OneEuroFilter(_Filter):
    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float, rate: float) -> None:
        self._min_cutoff, self._beta, self._rate = min_cutoff, beta, rate
        self._a_d = self._alpha(d_cutoff)
        self.reset()

    def _alpha(self, cutoff: float) -> float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * self._rate)

    def step(self, x: float) -> float:
        if self._y is None:
            self._y, self._dy = x, 0.0
            return x
        # Speed of change, estimated from the previous *filtered* value as in Casiez et al. (2012).
        self._dy += self._a_d * ((x - self._y) * self._rate - self._dy)
        cutoff = self._min_cutoff + self._beta * abs(self._dy)
        self._y += self._alpha(cutoff) * (x - self._y)
        return self._y

    def reset(self) -> None:
        self._y: float | None = None
        self._dy = 0.0


class OneEuro(Smoother):
    """The one-euro filter (Casiez, Roussel & Vogel, CHI 2012): a low-pass whose cutoff rises with speed.

    Slow drifts and jitter around a steady value get the low ``min_cutoff`` (strong smoothing);
    fast changes raise the cutoff by ``beta * |speed|`` so the output keeps up with them. The filter is
    sampled once per hop (2 Hz), so cutoffs above the 1 Hz Nyquist limit mean "almost no smoothing".

    Parameters
    ----------
    min_cutoff : float
        Cutoff in Hz at rest. Default 0.05 (time constant 3.2 s): a steady value barely moves.
    beta : float
        Cutoff increase in Hz per unit/s of speed. Default 2.0: a change of 0.5 over 1 s raises the cutoff to
        ~1 Hz (almost no smoothing at 2 Hz), so a step of 0.5 reaches 90 % in 2-3 hops, while hop-to-hop
        jitter of a few hundredths keeps the cutoff low.
    d_cutoff : float
        Cutoff in Hz of the speed estimate. Default 1.0, as in the paper.
    hop_s : float
        Seconds between calls. Default 0.5.
    """

    name = "one-euro"

    def __init__(
        self, min_cutoff: float = 0.05, beta: float = 2.0, d_cutoff: float = 1.0, hop_s: float = HOP_SECONDS
    ) -> None:
        self.min_cutoff = _number("min_cutoff", min_cutoff, strict=True)
        self.beta = _number("beta", beta)
        self.d_cutoff = _number("d_cutoff", d_cutoff, strict=True)
        self.hop_s = _number("hop_s", hop_s, strict=True)
        super().__init__()

    def _filter(self) -> _Filter:
        return _OneEuroFilter(self.min_cutoff, self.beta, self.d_cutoff, 1.0 / self.hop_s)

    def describe(self) -> str:
        return f"one-euro(min_cutoff={self.min_cutoff:g}Hz, beta={self.beta:g}, d_cutoff={self.d_cutoff:g}Hz)"


class _TriangleFilter(_Filter):
    def __init__(self, weights: tuple[float, ...]) -> None:
        self._weights = weights
        self._past: deque[float] = deque(maxlen=len(weights))

    def step(self, x: float) -> float:
        self._past.appendleft(x)  # _past[j] is the input j hops ago
        w = self._weights
        return sum(w[j] * v for j, v in enumerate(self._past)) / sum(w[: len(self._past)])

    def reset(self) -> None:
        self._past.clear()


class Triangle(Smoother):
    """Causal half of the MCA paper's 25-frame triangular moving average.

    The paper smooths offline with a centred triangle over 25 hops; live, only the past is known, so this
    keeps the falling half: weights ``w_j = taps - j`` for the input ``j`` hops ago, ``j = 0..taps-1``.
    At stream start the weights of the inputs seen so far are renormalised to sum to one. With the default
    13 taps the output lags a change by 4 hops (2 s) on average.

    Parameters
    ----------
    taps : int
        Number of hops averaged, the current one included. Default 13.
    """

    name = "triangle"

    def __init__(self, taps: int = 13) -> None:
        n = _number("taps", taps, low=1)
        if n > MAX_TAPS:
            raise ConfigError(f"smoothing parameter taps must be at most {MAX_TAPS} (10 min of hops), got {n:g}")
        if n != int(n):
            raise ConfigError(f"smoothing parameter taps must be a whole number, got {n:g}")
        self.taps = int(n)
        self.weights = tuple(float(self.taps - j) for j in range(self.taps))
        super().__init__()

    def _filter(self) -> _Filter:
        return _TriangleFilter(self.weights)

    def describe(self) -> str:
        return f"triangle(taps={self.taps})"


SMOOTHERS: dict[str, type[Smoother]] = {
    cls.name: cls for cls in (Passthrough, AttackRelease, OneEuro, Triangle)
}
"""Smoother classes by the name used on the command line."""


def parse_param(text: str) -> tuple[str, float]:
    """One smoother parameter as ``--smoothing-param`` takes it: ``"min-cutoff=0.05"`` -> ``("min_cutoff", 0.05)``.

    Raises
    ------
    ConfigError
        When ``text`` is not ``KEY=VALUE`` or the value is not a number.
    """
    key, sep, value = text.partition("=")
    if not sep:
        raise ConfigError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip().replace("-", "_"), float(value)
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not a number") from None


def make_smoother(name: str, **params: Any) -> Smoother:
    """Build a smoother from its name and keyword parameters (numbers or numeric strings).

    Raises
    ------
    ConfigError
        On an unknown name, an unknown parameter or a bad value.
    """
    try:
        cls = SMOOTHERS[name]
    except KeyError:
        raise ConfigError(f"unknown smoothing {name!r} (choose from {', '.join(SMOOTHERS)})") from None
    allowed = list(inspect.signature(cls).parameters)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no parameters"
        raise ConfigError(f"smoothing {name!r} takes {takes}; got {', '.join(unknown)}")
    return cls(**params)
