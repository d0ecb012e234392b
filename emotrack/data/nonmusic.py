"""Non-music audio (silence, room noise, hum, speech) for teaching a model when there is no music.

Why generated: a tracker must say "no music" for a quiet room or someone talking instead of naming an
emotion, and none of the labelled data sets has such audio. Everything here is synthesised, so nothing is
derived from the data sets: digital silence and dither, white/pink/brown noise, mains hum with noise, and
speech from ``espeak-ng`` (many voices, speeds and pitches, random word sequences), alone or over noise,
at levels from -70 to -15 dBFS RMS. Without ``espeak-ng`` the speech kinds are skipped.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from emotrack.audio import load_audio, rms_dbfs

__all__ = ["KINDS", "colored_noise", "make_nonmusic", "scale_to_dbfs", "speech"]

KINDS = ("silence", "white", "pink", "brown", "hum", "speech", "speech_noise")
"""Kinds of non-music clip :func:`make_nonmusic` writes, in turn."""

VOICES = ("en", "en-us", "en-gb-x-rp", "en+f3", "en+m3", "en-us+f2", "de", "fr", "es", "it", "nl", "pt")
_WORD_TEXT = (
    "the a and of to in is you that it he was for on are as with his they at be this have from or one had "
    "by word but not what all were we when your can said there use an each which she do how their if will "
    "up other about out many then them these so some her would make like him into time has look two more "
    "write go see number no way could people my than first water been call who oil its now find long down "
    "day did get come made may part today tomorrow session please thank you welcome everyone microphone "
    "check sound level room okay listen next slowly breathe again remember weather morning evening "
)
WORDS = tuple(_WORD_TEXT.split())


def scale_to_dbfs(x: np.ndarray, level_dbfs: float) -> np.ndarray:
    """``x`` scaled to an RMS of ``level_dbfs`` (unchanged if silent), clipped to [-1, 1]."""
    now = rms_dbfs(x)
    if not np.isfinite(now):
        return x.astype(np.float32)
    return np.clip(x * 10 ** ((level_dbfs - now) / 20), -1, 1).astype(np.float32)


def colored_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power spectrum ``1 / f**exponent`` (0 white, 1 pink, 2 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / f ** (exponent / 2), n)
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


def speech(text: str, sr: int, voice: str = "en", wpm: int = 160, pitch: int = 50) -> np.ndarray:
    """``text`` spoken by ``espeak-ng`` as mono float32 at ``sr`` Hz.

    Raises
    ------
    FileNotFoundError
        If ``espeak-ng`` is not installed.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError("espeak-ng is not installed (Debian: apt install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run([exe, "-v", voice, "-s", str(wpm), "-p", str(pitch), "-w", str(out), text],
                       check=True, capture_output=True)  # fmt: skip
        return load_audio(out, sr)


def _sentence(rng: np.random.Generator, n_words: int) -> str:
    words = rng.choice(WORDS, n_words)
    return " ".join(words) + "."


def _clip(kind: str, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * sr)
    if kind == "silence":  # digital zero or dither at -100..-75 dBFS
        return np.zeros(n, np.float32) if rng.random() < 0.5 else scale_to_dbfs(
            colored_noise(n, 0.0, rng), float(rng.uniform(-100, -75)))
    if kind in ("white", "pink", "brown"):
        exponent = {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind]
        return scale_to_dbfs(colored_noise(n, exponent, rng), float(rng.uniform(-70, -20)))
    if kind == "hum":
        t = np.arange(n) / sr
        f0 = float(rng.choice([50.0, 60.0]))
        tone = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3))
                   for k in range(1, 6))
        x = scale_to_dbfs(tone, 0.0) + scale_to_dbfs(colored_noise(n, 1.0, rng), float(rng.uniform(-30, -10)))
        return scale_to_dbfs(x, float(rng.uniform(-65, -30)))
    voice = str(rng.choice(VOICES))
    parts, total = [], 0
    while total < n:
        said = speech(_sentence(rng, int(rng.integers(6, 18))), sr, voice, int(rng.integers(120, 220)),
                      int(rng.integers(25, 75)))
        pause = np.zeros(int(rng.uniform(0.1, 1.2) * sr), np.float32)
        parts += [said, pause]
        total += len(said) + len(pause)
    x = scale_to_dbfs(np.concatenate(parts)[:n], float(rng.uniform(-35, -15)))
    if kind == "speech_noise":
        x = x + scale_to_dbfs(colored_noise(n, float(rng.uniform(0, 2)), rng), float(rng.uniform(-60, -35)))
    return np.clip(x, -1, 1).astype(np.float32)


def make_nonmusic(
    out_dir: str | Path, n: int, sr: int = 16000, seconds: float = 30.0, seed: int = 0,
    kinds: Sequence[str] = KINDS,
) -> list[tuple[Path, str]]:
    """Write ``n`` non-music clips (kinds in turn) as ``out_dir/<kind>-<i>.wav``; reuse existing files.

    Returns ``(path, kind)`` per clip. Speech kinds are left out when ``espeak-ng`` is missing. Each clip
    has its own seed (``seed``, ``i``), so the set is reproducible and growing ``n`` keeps earlier clips.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    usable = [k for k in kinds if not k.startswith("speech") or shutil.which("espeak-ng")]
    clips = []
    for i in range(n):
        kind = usable[i % len(usable)]
        path = out / f"{kind}-{seed}-{i:04d}.wav"
        if not path.exists():
            audio = _clip(kind, seconds, sr, np.random.default_rng([seed, i]))
            tmp = path.with_suffix(".tmp.wav")
            sf.write(tmp, audio, sr, subtype="FLOAT")
            tmp.replace(path)
        clips.append((path, kind))
    return clips
