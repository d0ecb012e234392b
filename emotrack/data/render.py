"""Render MIDI data sets (VGMIDI, EMOPIA) to 16 kHz mono wav with the ``fluidsynth`` command line.

The models only ever hear audio, so MIDI-only data sets are synthesised once and cached. The cache
path names the soundfont and sample rate, so changing either renders afresh instead of mixing timbres.
Files are written under a temporary name and renamed, so an interrupted run never leaves a truncated
wav that a later run would take for finished.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from emotrack.data.clips import Clip, DataError

__all__ = [
    "MODEL_SR",
    "SOUNDFONT_CANDIDATES",
    "find_soundfont",
    "render_clips",
    "render_midi",
    "render_path",
]

MODEL_SR = 16000
"""Sample rate the models consume, and so the rate MIDI is rendered at."""

SOUNDFONT_CANDIDATES = (
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
)
"""Soundfonts tried in order when none is given: Debian ``timgm6mb-soundfont``, then ``fluid-soundfont-gm``."""

RENDER_GAIN = 0.5
"""fluidsynth master gain; 0.5 keeps dense piano arrangements clear of clipping."""


def find_soundfont(soundfont: str | Path | None = None) -> Path:
    """Resolve the soundfont: the argument, else ``$EMOTRACK_SOUNDFONT``, else the Debian GM fonts.

    Raises
    ------
    DataError
        If the given file does not exist or no default soundfont is installed.
    """
    chosen = soundfont or os.environ.get("EMOTRACK_SOUNDFONT")
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise DataError(f"soundfont not found: {path}")
        return path
    for path in SOUNDFONT_CANDIDATES:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in SOUNDFONT_CANDIDATES)
    raise DataError(
        f"no General MIDI soundfont found (tried {tried}); install one (Debian: apt install "
        "timgm6mb-soundfont or fluid-soundfont-gm) or pass a .sf2 path"
    )


def _fluidsynth() -> str:
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise DataError("the fluidsynth command is not on PATH; install it (Debian: apt install fluidsynth)")
    return exe


def render_midi(
    midi_path: str | Path,
    out_path: str | Path,
    soundfont: str | Path | None = None,
    sr: int = MODEL_SR,
    gain: float = RENDER_GAIN,
) -> Path:
    """Synthesise one MIDI file to a mono 16-bit wav at ``sr`` Hz.

    fluidsynth always writes stereo; the two channels are averaged here so the cached file is exactly
    what the models see. Audio starts at MIDI time 0 and runs 2-3 s past the last note (release tail).

    Raises
    ------
    DataError
        If the MIDI file is missing, fluidsynth fails or writes no audio.
    """
    midi_path, out_path = Path(midi_path), Path(out_path)
    if not midi_path.is_file():
        raise DataError(f"MIDI file not found: {midi_path}")
    font = find_soundfont(soundfont)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".wav", prefix=".render-", dir=out_path.parent)
    os.close(fd)
    stereo = Path(tmp_name)
    mono = stereo.with_name(stereo.stem + "-mono.wav")
    cmd = [_fluidsynth(), "-ni", "-q", "-g", str(gain), "-r", str(int(sr)), "-F", str(stereo), str(font),
           str(midi_path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise DataError(f"fluidsynth failed on {midi_path} (exit {proc.returncode}): {proc.stderr.strip()}")
        try:
            audio, file_sr = sf.read(stereo, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise DataError(f"fluidsynth wrote no readable audio for {midi_path}: {exc}") from None
        if len(audio) == 0:
            raise DataError(f"fluidsynth wrote no audio for {midi_path}")
        if file_sr != sr:
            raise DataError(f"fluidsynth wrote {file_sr} Hz instead of {sr} Hz for {midi_path}")
        sf.write(mono, audio.mean(axis=1, dtype=np.float32), sr, subtype="PCM_16")
        os.replace(mono, out_path)
    finally:
        stereo.unlink(missing_ok=True)
        mono.unlink(missing_ok=True)
    return out_path


def render_path(cache_dir: str | Path, clip: Clip, soundfont: str | Path, sr: int = MODEL_SR) -> Path:
    """Cache location of a clip's rendering: ``render/<dataset>/<font>-<sr>/<local id>.wav``."""
    local = clip.id.split("/", 1)[1] if clip.id.startswith(clip.dataset + "/") else clip.id
    return Path(cache_dir) / "render" / clip.dataset / f"{Path(soundfont).stem}-{int(sr)}" / f"{local}.wav"


def render_clips(
    clips: Sequence[Clip],
    cache_dir: str | Path,
    soundfont: str | Path | None = None,
    sr: int = MODEL_SR,
    workers: int | None = None,
    progress: bool = True,
) -> list[Clip]:
    """Render every clip's ``meta["midi_path"]`` into the cache (skipping ones already there).

    Parameters
    ----------
    clips : sequence of Clip
        Clips from a MIDI data set loader.
    cache_dir : path
        Cache root; files go to :func:`render_path`.
    soundfont : path, optional
        See :func:`find_soundfont`.
    workers : int, optional
        Parallel fluidsynth processes (default: CPU count); each is single-threaded.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    list of Clip
        Copies of ``clips`` with ``audio_path`` set to the rendered wav.
    """
    font = find_soundfont(soundfont)
    out = [replace(c, audio_path=render_path(cache_dir, c, font, sr)) for c in clips]
    todo = [c for c in out if not c.audio_path.is_file()]
    if todo:
        _fluidsynth()
        n_workers = max(1, workers or os.cpu_count() or 1)
        with (
            ThreadPoolExecutor(n_workers) as pool,
            tqdm(total=len(todo), desc=f"render {todo[0].dataset}", unit="clip", disable=not progress) as bar,
        ):
            jobs = [pool.submit(render_midi, c.meta["midi_path"], c.audio_path, font, sr) for c in todo]
            try:
                for job in as_completed(jobs):
                    job.result()
                    bar.update()
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
    return out
