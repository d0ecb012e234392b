"""``emotrack personalize``: one song and one listener's curve in, a personal ONNX model out, without torch.

Steps: decode the song with the runtime's code path, compute the base model's front-end frames, run the
base graph once over every hop with the fused vectors as an extra output (:class:`FusedExtractor`), fit
the valence/arousal head to the curve (:func:`emotrack.personal.head.adapt`), and write the base file with
those weights replaced and a new model card (:func:`write_personal`). What the card records: the base
model (name, version, file SHA-256), the song's SHA-256 (never the audio or its name), when, the steps,
step size and pull toward the base, and the fit on the annotated song before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from emotrack.errors import ModelError, OutputError
from emotrack.export.metadata import OUTPUT_VA, ModelCard
from emotrack.personal.annotations import Curve, read_curve
from emotrack.personal.head import BIAS, HEADS, L2, LR, STEPS, VA_ROWS, Head, adapt, contexts, predict
from emotrack.personal.onnxpatch import OnnxBytes

__all__ = ["FusedExtractor", "PersonalResult", "fit_scores", "personalize", "user_models_dir", "write_personal"]

PERSONAL_KEY = "emotrack.personal"
"""Extra metadata property of a personal model (JSON); runtimes that do not know it ignore it."""


def user_models_dir() -> Path:
    """Where personal models live (and ``emotrack models`` looks): ``$EMOTRACK_MODELS``, else the user data folder."""
    from emotrack.inference import user_models_dir as find

    return find()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FusedExtractor:
    """The base graph with the fusion's vectors as extra outputs: what the adaptable head reads.

    One fusion head (``head.fusion.heads``) per model, or one per member of a seed ensemble
    (``members.<k>.head.fusion.heads``), whose output is the members' mean. Refuses (``ModelError``) a graph
    whose V/A output is not that (mean) ``tanh(fused . heads + bias)``: then the numpy head would not be the
    graph's.
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        from emotrack.ort_settings import session_options

        self.path = Path(path)
        self.model = OnnxBytes(self.path.read_bytes())
        fused_of = {name: next(i for i in ins if i != name) for op, ins, _ in self.model.nodes() if op == "Mul"
                    for name in ins if name == HEADS or name.endswith("." + HEADS)}
        if not fused_of:
            raise ModelError(f"{path}: no MCA fusion head ({HEADS}) found; only MCA-family models can be personalised")
        self.prefixes = sorted(name.removesuffix(HEADS) for name in fused_of)
        """``""`` for one model, ``members.<k>.`` per member of an ensemble (sorted by name: the member axis of
        :attr:`base`, of the fused vectors and of the heads :func:`write_personal` writes follows this list)."""
        self.fused_names = [fused_of[prefix + HEADS] for prefix in self.prefixes]
        w = [self.model.initializer(prefix + HEADS)[:VA_ROWS].astype(np.float64) for prefix in self.prefixes]
        b = [self.model.initializer(prefix + BIAS)[:VA_ROWS].astype(np.float64) for prefix in self.prefixes]
        self.base = Head(w[0], b[0]) if len(w) == 1 else Head(np.stack(w), np.stack(b))
        graph = self.model.data
        for name in self.fused_names:
            graph = OnnxBytes(bytes(graph)).with_output(name)
        self.session = ort.InferenceSession(graph, sess_options=session_options(threads),
                                            providers=["CPUExecutionProvider"])

    def run(self, frames: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Normalised frames ``[n_hops, *frame]`` -> (fused ``[n_hops, n_out, H]``, ensembles ``[n_hops, K, n_out,
        H]``; the graph's ``va``)."""
        fused, va = [], []
        for ctx, mask in contexts(frames, n_frames):
            *f, v = self.session.run([*self.fused_names, OUTPUT_VA], {"frames": ctx, "mask": mask})
            fused.append(f[0] if len(f) == 1 else np.stack(f, axis=1))
            va.append(v)
        fused_all, va_all = np.concatenate(fused), np.concatenate(va)
        gap = float(np.abs(predict(fused_all, self.base) - va_all).max()) if len(va_all) else 0.0
        if gap > 1e-4:
            raise ModelError(f"{self.path}: its output is not tanh(fused . heads + bias) (off by {gap:.2g}); "
                             "this model cannot be personalised")
        return fused_all, va_all


def fit_scores(pred: np.ndarray, targets: np.ndarray) -> dict[str, dict[str, float]]:
    """CCC, PCC and RMSE of valence and arousal (the DSAML paper's columns), rounded for the card."""
    from emotrack.training.metrics import ccc, pcc, rmse  # numpy only

    out = {}
    for i, axis in enumerate(("valence", "arousal")):
        p, y = pred[:, i], targets[:, i]
        out[axis] = {"ccc": round(ccc(p, y), 4), "pcc": round(pcc(p, y), 4), "rmse": round(rmse(p, y), 4)}
    return out


@dataclass
class PersonalResult:
    """What one personalisation did (also written into the model)."""

    out: Path
    card: ModelCard
    info: dict[str, Any]
    seconds: float
    loss: list[float] = field(default_factory=list)


def write_personal(model: OnnxBytes, head: Head, card: ModelCard, info: dict[str, Any], out: str | Path,
                   prefixes: list[str] | None = None) -> Path:
    """Write the base file with the adapted head(s) and the personal card (atomically).

    ``prefixes``: :attr:`FusedExtractor.prefixes`, one per member when ``head`` has a member axis.
    """
    prefixes = prefixes or [""]
    for k, prefix in enumerate(prefixes):
        heads, bias = model.initializer(prefix + HEADS), model.initializer(prefix + BIAS)
        heads[:VA_ROWS] = head.w if head.w.ndim == 2 else head.w[k]
        bias[:VA_ROWS] = head.b if head.b.ndim == 1 else head.b[k]
        model.set_initializer(prefix + HEADS, heads)
        model.set_initializer(prefix + BIAS, bias)
    props = {k: v for k, v in model.metadata().items() if not k.startswith("emotrack.")}
    props.update(card.to_properties())
    props[PERSONAL_KEY] = json.dumps(info)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(model.with_metadata(props))
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


def song_targets(curve: Curve, n_hops: int, hop_s: float) -> tuple[np.ndarray, np.ndarray]:
    targets, valid = curve.on_hops(n_hops, hop_s)
    if valid.sum() < 2:
        raise ModelError("the annotation does not overlap the audio's hops")
    return targets, valid


def personalize(audio: str | Path, labels: str | Path, model: str | os.PathLike[str] | None = None,
                out: str | Path | None = None, steps: int = STEPS, lr: float = LR, l2: float = L2,
                threads: int = 1) -> PersonalResult:
    """Adapt ``model`` (default: the bundled default) to one listener's curve of one song; write the ONNX."""
    from emotrack.audio import load_audio
    from emotrack.inference import ModelRunner

    t0 = time.perf_counter()
    runner = ModelRunner(model, provider="cpu", threads=threads)
    base_card = runner.card
    signal = load_audio(audio, base_card.sample_rate)
    duration = len(signal) / base_card.sample_rate
    curve = read_curve(labels, duration_s=duration)
    frames = runner.normalizer(runner.frontend.process_signal(signal))
    extractor = FusedExtractor(runner.path, threads)
    fused, va = extractor.run(frames, base_card.context_frames)
    targets, valid = song_targets(curve, len(fused), base_card.hop_s)
    head, loss = adapt(fused[valid], targets[valid], extractor.base, steps, lr, l2)
    after = predict(fused, head)
    base_name = base_card.name.removesuffix("-personal")
    info = {
        "base_model": {"name": base_card.name, "version": base_card.version, "file": runner.path.name,
                       "sha256": sha256_file(runner.path)},
        "song_sha256": sha256_file(audio),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "adapted": (f"{HEADS}[:2], {BIAS}[:2] (valence and arousal output layer)" if len(extractor.prefixes) == 1
                    else f"{HEADS}[:2], {BIAS}[:2] of each of the {len(extractor.prefixes)} ensemble members "
                    "(valence and arousal output layers), fitted together on their mean"),
        "steps": int(steps), "learning_rate": float(lr), "l2_to_base": float(l2),
        "optimizer": "full-batch gradient descent on MSE + (1 - CCC) per axis",
        "annotation": {"labels": len(curve.times), "span_s": [round(float(curve.times[0]), 3),
                                                              round(float(curve.times[-1]), 3)],
                       "hops_fitted": int(valid.sum())},
        "fit_before": fit_scores(va[valid], targets[valid]),
        "fit_after": fit_scores(after[valid], targets[valid]),
        "emotrack_python": sys.version.split()[0],
    }
    card = replace(
        base_card,
        name=f"{base_name}-personal",
        description=f"{base_card.name} {base_card.version} adapted to one listener's annotation of one song "
                    f"(sha256 {info['song_sha256'][:12]}) on {info['created'][:10]}",
        training={**base_card.training, "personalised": {k: info[k] for k in ("base_model", "song_sha256", "created",
                                                                               "steps", "learning_rate")}},
        metrics={"annotated_song_before": info["fit_before"], "annotated_song_after": info["fit_after"]},
    )
    if out is None:
        out = user_models_dir() / f"{base_name}-personal-{info['song_sha256'][:8]}.onnx"
    path = write_personal(extractor.model, head, card, info, out, extractor.prefixes)
    return PersonalResult(path, card, info, time.perf_counter() - t0, loss)


def describe(result: PersonalResult) -> str:
    """The lines ``emotrack personalize`` prints."""
    b, a = result.info["fit_before"], result.info["fit_after"]
    rows = [f"wrote {result.out} ({result.card.name}, from {result.info['base_model']['name']} "
            f"{result.info['base_model']['version']}) in {result.seconds:.1f} s",
            f"fit on the annotated song ({result.info['annotation']['hops_fitted']} hops), before -> after:"]
    for axis in ("valence", "arousal"):
        rows.append(f"  {axis:8s} CCC {b[axis]['ccc']:+.3f} -> {a[axis]['ccc']:+.3f}   PCC {b[axis]['pcc']:+.3f} -> "
                    f"{a[axis]['pcc']:+.3f}   RMSE {b[axis]['rmse']:.3f} -> {a[axis]['rmse']:.3f}")
    return "\n".join(rows)
