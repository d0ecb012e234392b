"""Front-end feature cache: decode and analyse every training clip once.

Training runs many epochs (and five CV folds) over the same clips; decoding mp3, resampling and
computing log-mel patches dominates the cost, so the frames of each clip are computed once with the
*runtime's* code path (``frontend.process_signal(load_audio(path, sr))``) and stored as one ``.npy``
per clip. The cache directory is keyed by a hash of the front end's name and parameters, so changing
e.g. ``n_mels`` can never silently reuse stale frames.

A clip can also be cached pitch-shifted (``shift`` semitones, librosa's ``pitch_shift`` before the front end):
training copies that keep the clip's labels (:attr:`TrainConfig.pitch_shifts
<emotrack.training.trainer.TrainConfig>`). They sit beside the clip's frames as ``<clip>-p+1.npy``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from emotrack.audio import load_audio
from emotrack.frontends import make_frontend

__all__ = ["FeatureCache", "frontend_key"]


def frontend_key(name: str, params: dict[str, Any]) -> str:
    """Short stable hash of a front end's identity (name + sorted parameters)."""
    blob = json.dumps({"name": name, "params": params}, sort_keys=True).encode()
    return f"{name}-{hashlib.sha1(blob).hexdigest()[:12]}"


def _clip_file(directory: Path, audio_path: Path, shift: int = 0) -> Path:
    """Cache file for a clip: stem plus a hash of the full path (stems can repeat across folders), plus the
    pitch shift if any."""
    digest = hashlib.sha1(str(Path(audio_path).resolve()).encode()).hexdigest()[:10]
    return directory / f"{Path(audio_path).stem}-{digest}{f'-p{shift:+d}' if shift else ''}.npy"


def _compute(job: tuple[str, dict[str, Any], str, int, str]) -> str:
    """Worker: frames of one clip (shifted by ``shift`` semitones) -> ``.npy`` (written atomically so a killed
    run leaves no torn file)."""
    name, params, audio_path, shift, out = job
    frontend = make_frontend(name, params)
    signal = load_audio(audio_path, frontend.sample_rate)
    if shift:
        import librosa  # the train extra; only shifted copies need it

        # Same length out as in, so the copy has the clip's hops (and its labels line up).
        signal = librosa.effects.pitch_shift(signal, sr=frontend.sample_rate, n_steps=shift,
                                             res_type="soxr_hq").astype(np.float32)
    frames = frontend.process_signal(signal).astype(np.float32)
    tmp = out + f".{os.getpid()}.tmp.npy"
    np.save(tmp, frames)
    os.replace(tmp, out)
    return out


class FeatureCache:
    """Per-clip front-end frames on disk.

    Parameters
    ----------
    root : path
        Cache root; frames live in ``root/<frontend-key>/``.
    frontend_name : str
        Registered front-end name (e.g. ``"logmel"``).
    frontend_params : dict, optional
        Constructor parameters; defaults to the front end's own defaults (as reported by ``params()``).
    """

    def __init__(self, root: str | Path, frontend_name: str = "logmel", frontend_params: dict[str, Any] | None = None):
        frontend = make_frontend(frontend_name, frontend_params)
        self.frontend_name = frontend_name
        self.frontend_params = frontend.params()
        self.frame_shape = frontend.frame_shape
        self.dir = Path(root) / frontend_key(frontend_name, self.frontend_params)

    def path(self, audio_path: str | Path, shift: int = 0) -> Path:
        return _clip_file(self.dir, Path(audio_path), shift)

    def build(self, audio_paths: Sequence[str | Path], workers: int = 2, progress: bool = True,
              shift: int = 0) -> int:
        """Compute the frames of every clip (shifted by ``shift`` semitones) not cached yet; return how many
        were computed.

        Uses ``workers`` processes (the front end is numpy-bound and single-threaded per clip).
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "frontend.json").write_text(
            json.dumps({"name": self.frontend_name, "params": self.frontend_params}, indent=1)
        )
        todo = [
            (self.frontend_name, self.frontend_params, str(p), shift, str(self.path(p, shift)))
            for p in audio_paths
            if not self.path(p, shift).exists()
        ]
        if not todo:
            return 0
        desc = f"features {shift:+d} st" if shift else "features"
        bar = tqdm(total=len(todo), desc=desc, unit="clip", disable=not progress)
        if workers <= 1:
            for job in todo:
                _compute(job)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(_compute, todo, chunksize=4):
                    bar.update()
        bar.close()
        return len(todo)

    def load(self, audio_path: str | Path, shift: int = 0) -> np.ndarray:
        """Frames ``[n_hops, *frame_shape]`` of one (cached) clip, or of its copy shifted ``shift`` semitones."""
        return np.load(self.path(audio_path, shift))

    def load_all(self, audio_paths: Sequence[str | Path]) -> list[np.ndarray]:
        return [self.load(p) for p in audio_paths]
