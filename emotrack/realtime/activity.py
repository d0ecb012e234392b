"""Is there music at all? Each hop's ``confidence`` in [0, 1] and ``active`` flag.

Why: silence, room noise or someone talking must come out as "no music", not as an emotion. Two signals
combine:

* the model's own ``music`` output (probability that its 10 s context holds music), for models trained
  with a music head on generated silence, noise and speech; models without one count as 1;
* the level of the hop just heard: below :data:`FLOOR_DBFS` nothing is music, above :data:`FULL_DBFS` the
  level does not limit, in between the factor ramps linearly. This reacts within one hop when a
  stream goes silent, where the model's context still remembers the music.

``confidence = music probability x level factor``; ``active`` follows it with hysteresis (on at
:data:`ON`, off below :data:`OFF`), so a value hovering near one threshold does not flicker.
"""

from __future__ import annotations

import math

__all__ = ["FLOOR_DBFS", "FULL_DBFS", "MUSIC_OUTPUT", "OFF", "ON", "ActivityGate", "level_factor"]

FLOOR_DBFS = -60.0
"""Hop RMS (dB relative to full scale) at and below which a hop has confidence 0."""
FULL_DBFS = -50.0
"""Hop RMS from which the level no longer limits confidence."""
ON, OFF = 0.6, 0.4
"""Hysteresis thresholds on confidence for the ``active`` flag."""
MUSIC_OUTPUT = "music"
"""Name of the model output that holds the music probability."""


def level_factor(level_dbfs: float) -> float:
    """0 at or below :data:`FLOOR_DBFS`, 1 from :data:`FULL_DBFS`, linear in dB between."""
    if not level_dbfs > FLOOR_DBFS:  # also catches NaN and -inf
        return 0.0
    return min(1.0, (level_dbfs - FLOOR_DBFS) / (FULL_DBFS - FLOOR_DBFS))


class ActivityGate:
    """Per-stream confidence and hysteresis state; :meth:`process` once per hop, in order."""

    def __init__(self) -> None:
        self.active = False

    def reset(self) -> None:
        self.active = False

    @staticmethod
    def describe(has_music_output: bool) -> str:
        """One line for clients (the WebSocket ``hello``): where confidence comes from and the thresholds."""
        source = "model music probability x level" if has_music_output else "level only (model has no music output)"
        return f"{source}; level {FLOOR_DBFS:g}..{FULL_DBFS:g} dBFS; active on >= {ON:g}, off < {OFF:g}"

    def process(self, music: float | None, level_dbfs: float) -> tuple[float, bool]:
        """``(confidence, active)`` of one hop from its music probability (``None``: no music output)."""
        p = 1.0 if music is None or not math.isfinite(music) else min(1.0, max(0.0, float(music)))
        confidence = p * level_factor(level_dbfs)
        if self.active and confidence < OFF:
            self.active = False
        elif not self.active and confidence >= ON:
            self.active = True
        return confidence, self.active
