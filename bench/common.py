"""Shared helpers for the benchmarks: machine description, percentiles, result files, test audio."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
FOURQ = Path("/work/shared/data/4q")
SCRATCH = Path(os.environ.get("BENCH_SCRATCH", "/tmp/emotrack-bench"))  # generated audio lives here, never in git


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(provider: str = "cpu") -> dict[str, Any]:
    """Who ran this: cores, CPU model, load, GPU, versions."""
    import onnxruntime as ort

    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "gpu": "none (no GPU lent to this session)" if provider == "cpu" else provider,
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "ort_available_providers": ort.get_available_providers(),
        "platform": platform.platform(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info


def pct(values: Any, digits: int = 3) -> dict[str, float]:
    """p50/p95/p99/max/mean of a sample (ms or whatever unit comes in)."""
    a = np.asarray(values, np.float64)
    if a.size == 0:
        return {"n": 0}
    q = np.percentile(a, [50, 95, 99])
    return {
        "n": int(a.size),
        "p50": round(float(q[0]), digits),
        "p95": round(float(q[1]), digits),
        "p99": round(float(q[2]), digits),
        "max": round(float(a.max()), digits),
        "mean": round(float(a.mean()), digits),
    }


def command_line() -> str:
    script = Path(sys.argv[0]).resolve()
    root = Path(__file__).resolve().parent.parent
    if script.is_relative_to(root / "bench"):  # python -m bench.x or bench.accuracy.x
        head = "python -m " + ".".join(script.relative_to(root).with_suffix("").parts)
    else:
        head = f"python {sys.argv[0]}"
    return " ".join([head, *(shlex.quote(a) for a in sys.argv[1:])])


def save(name: str, payload: dict[str, Any], provider: str = "cpu") -> Path:
    """Write ``bench/results/<name>.json`` with machine, command, load at end and timestamp."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "benchmark": name,
        "command": command_line(),
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(provider),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return path


def fourq_clips(limit: int | None = None) -> list[Path]:
    """4Q clips in a fixed order (sorted by quadrant folder and name), optionally the first ``limit``
    taken round-robin over the quadrants so a short list still covers all four."""
    per_q = [sorted((FOURQ / q).glob("*.mp3")) for q in ("Q1", "Q2", "Q3", "Q4")]
    mixed = [p for group in zip(*per_q, strict=False) for p in group]
    rest = [p for group in per_q for p in group if p not in set(mixed)]
    clips = mixed + rest
    return clips[:limit] if limit else clips


def long_audio(seconds: float, rate: int = 44100) -> Path:
    """A WAV of >= ``seconds`` of real music: 4Q clips concatenated (stereo 44.1 kHz), in SCRATCH.

    Falls back to the bundled example recording looped when the 4Q data is absent.
    """
    import soundfile as sf
    import soxr

    SCRATCH.mkdir(parents=True, exist_ok=True)
    path = SCRATCH / f"music_{int(seconds)}s_{rate}.wav"
    if path.exists():
        return path
    clips = fourq_clips() if FOURQ.exists() else []
    if not clips:
        from emotrack.assets import EXAMPLE_AUDIO

        clips = [EXAMPLE_AUDIO]
    parts, total, i = [], 0, 0
    while total < seconds * rate:
        data, sr = sf.read(str(clips[i % len(clips)]), dtype="float32", always_2d=True)
        i += 1
        data = data[:, :2] if data.shape[1] >= 2 else np.repeat(data, 2, axis=1)
        if sr != rate:
            data = soxr.resample(data, sr, rate).astype(np.float32)
        parts.append(data)
        total += len(data)
    sf.write(str(path), np.concatenate(parts)[: int(seconds * rate) + rate], rate, subtype="PCM_16")
    return path


def bundled() -> list[str]:
    from emotrack.inference import bundled_models

    return list(bundled_models())
