"""Cross-validate the zoo on a lent GPU machine from a self-contained feature pack (issue #5).

Why this script: the GPU machine (the ``device`` tool) receives only the repository, at most 64 MiB per
call, never ``../shared/data``; and on the 2-core CPU here one DAMFF epoch on 4Q costs ~30 s, so the zoo
models could only be trained for 6 epochs. Three steps:

``pack`` (here)
    Writes the cached log-mel frames of one data set as 8-bit codes (uniform steps of ~0.08 nat, about
    0.36 dB, delta-coded along time and xz-compressed), with the labels and the *grouped folds computed
    here* by :mod:`emotrack.data.splits` (4Q by artist, VGMIDI by piece, EMOPIA's official song split), so
    the GPU run uses exactly the splits of ``emotrack train`` and :mod:`bench.accuracy.zoo_bench`.
``run`` (on the GPU machine)
    Trains every (model, fold) job with :func:`emotrack.training.trainer.train` in parallel worker
    processes sharing the GPU, early-stopping on each fold's inner grouped holdout, and writes the
    streamed predictions of each test fold plus the final checkpoints. A deadline stops training
    early (the best epoch so far is kept and the epochs actually run are recorded).
``collect`` (here)
    Scores the returned predictions against the exact labels with the library's metrics and writes the
    same CV JSON as ``emotrack train`` (``bench/accuracy/<model>_<data>_gpu_cv.json``).

The 8-bit codes change a log-mel value by at most half a step (0.04 nat). On the 4Q final models the
streamed predictions moved by at most 0.047 (median 0.0015) between coded and exact frames, and no clip's
quadrant changed.

What the first run (2026-11-26, one H200, 7 minutes) taught: 42 worker processes (4Q, VGMIDI and EMOPIA at
once) kept the GPU 99 % busy, yet each 4Q job ran ~55 s per epoch, slower than one core of the 2-core CPU
here (~32 s for DAMFF): the GPU time-slices between processes, and these small models issue many tiny
kernels. Up to 17 GB held by each VGMIDI worker's caching allocator then starved the EMOPIA workers (CUDA
out of memory). Next time: a few processes in all (``--procs`` about 4), one data set at a time.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

LOG_FLOOR = float(np.log(1e-6))
"""Smallest log-mel value the front end emits (log of its power floor)."""

CODE_LEVELS = 255


# -- pack ----------------------------------------------------------------------------------------------


def encode_frames(frames: np.ndarray, lo: float, step: float) -> np.ndarray:
    """``[n, ...]`` float frames -> uint8 codes, delta-coded along the flattened time axis (mod 256)."""
    q = np.clip(np.round((frames - lo) / step), 0, CODE_LEVELS).astype(np.uint8)
    flat = q.reshape(-1, q.shape[-1])
    return np.diff(flat, axis=0, prepend=np.zeros((1, flat.shape[1]), np.uint8))


def decode_frames(codes: np.ndarray, shape: Sequence[int], lo: float, step: float) -> np.ndarray:
    """Inverse of :func:`encode_frames` (up to the quantisation step)."""
    q = np.cumsum(codes, axis=0, dtype=np.uint8)
    return (lo + step * q.astype(np.float32)).reshape(shape)


def _splits(name: str, clips: Sequence[Any]) -> dict[str, Any]:
    """Outer folds and inner early-stopping holdouts, as index lists into ``clips``."""
    from emotrack.data.splits import emopia_official_split, grouped_kfold

    def inner(idx: np.ndarray, k: int) -> list[list[int]]:
        tr, va = grouped_kfold([clips[i] for i in idx], k=k, seed=0)[0]
        return [idx[tr].tolist(), idx[va].tolist()]

    everything = np.arange(len(clips))
    if name == "emopia":
        train, val = emopia_official_split(clips)
        return {"folds": [{"test": val.tolist(), "inner": inner(train, 7)}],
                "final": {"inner": inner(train, 7)},
                "split": "EMOPIA official song-level split: train -> val (inner holdout: 1/7 of train songs)"}
    k_inner = 7 if name == "4q" else 5
    folds = [{"test": test.tolist(), "inner": inner(train, k_inner)} for train, test in grouped_kfold(clips, 5, 0)]
    group = "artist" if name == "4q" else "piece"
    return {"folds": folds, "final": {"inner": inner(everything, k_inner)},
            "split": f"StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0) by {group}; inner "
            f"early-stopping holdout: first fold of a {k_inner}-fold grouped split of the training part"}


def load_clips(name: str, data_root: str, render_cache: str) -> list[Any]:
    """The clips of one data set that have audio, exactly as ``emotrack train`` loads them."""
    from emotrack.training.examples import load_clips as load

    return load(data_root, [name], render_cache, workers=1)


def pack(args: argparse.Namespace) -> None:
    from emotrack.training.examples import load_examples

    clips = load_clips(args.data, args.data_root, args.render_cache)
    examples, cache = load_examples(clips, args.cache, workers=1, progress=False)
    hi = max(float(e.frames.max()) for e in examples)
    step = (hi - LOG_FLOOR) / CODE_LEVELS
    codes = np.concatenate([encode_frames(e.frames, LOG_FLOOR, step) for e in examples])
    n_hops = [len(e.frames) for e in examples]
    targets = np.concatenate([
        e.targets if e.targets is not None else np.full((len(e.frames), 2), np.nan, np.float32) for e in examples
    ]).astype(np.float32)
    header = {
        "data": args.data, "lo": LOG_FLOOR, "step": step, "frame_shape": list(examples[0].frames.shape[1:]),
        "frontend": {"name": cache.frontend_name, "params": cache.frontend_params},
        "ids": [e.id for e in examples], "groups": [e.group for e in examples],
        "quadrants": [int(e.quadrant) for e in examples], "n_hops": n_hops, **_splits(args.data, clips),
    }
    buf = io.BytesIO()
    np.savez(buf, codes=codes, targets=targets, header=np.frombuffer(json.dumps(header).encode(), np.uint8))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(lzma.compress(buf.getvalue(), preset=6))
    err = max(float(np.abs(decode_frames(encode_frames(e.frames, LOG_FLOOR, step), e.frames.shape, LOG_FLOOR, step)
                            - e.frames).max()) for e in examples[:20])
    print(f"{out}: {len(examples)} clips, {sum(n_hops)} hops, {out.stat().st_size / 2**20:.1f} MiB, "
          f"step {step:.4f} nat, max coding error {err:.4f}")


def read_pack(path: str | Path) -> tuple[dict[str, Any], list[Any]]:
    """Header and :class:`~emotrack.training.trainer.Example` list (decoded frames) of a pack."""
    from emotrack.training.trainer import Example

    with np.load(io.BytesIO(lzma.decompress(Path(path).read_bytes()))) as z:
        header = json.loads(z["header"].tobytes())
        codes, targets = z["codes"], z["targets"]
    shape = header["frame_shape"]
    frames_per_hop = int(np.prod(shape[:-1]))
    examples, row, hop = [], 0, 0
    for cid, group, quad, n in zip(header["ids"], header["groups"], header["quadrants"], header["n_hops"],
                                   strict=True):
        rows = n * frames_per_hop
        frames = decode_frames(codes[row : row + rows], (n, *shape), header["lo"], header["step"])
        examples.append(Example(cid, group, frames, quad, None if quad else targets[hop : hop + n].copy()))
        row, hop = row + rows, hop + n
    return header, examples


# -- run (GPU machine) -----------------------------------------------------------------------------------

RECIPES: dict[str, dict[str, Any]] = {
    # The 4Q recipe of the bundled models (bench/accuracy/*_4q_cv.json), also used for EMOPIA's quadrants.
    "4q": {"patience": None, "ema": 0.98, "smooth": 3, "freq_mask": 12},
    "emopia": {"patience": None, "ema": 0.98, "smooth": 3, "freq_mask": 12},
    # VGMIDI's continuous targets: bench/accuracy/zoo_bench.py's _zoo_cfg.
    "vgmidi": {"hops_per_clip": 64, "batch_clips": 8, "ema": 0.98, "smooth": 3, "patience": None, "freq_mask": 12,
               "ccc_weight": 0.5},
}

_STATE: dict[str, Any] = {}


def _worker_init(pack_path: str, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _STATE["header"], _STATE["examples"] = read_pack(pack_path)


def _job(job: dict[str, Any]) -> dict[str, Any]:
    """Train one (model, fold) and return its streamed test predictions (or save the final checkpoint)."""
    from emotrack.export.metadata import ModelCard
    from emotrack.frontends import Normalizer
    from emotrack.training.checkpoint import save_checkpoint
    from emotrack.training.evaluate import stream_predictions, torch_predictor
    from emotrack.training.trainer import TrainConfig, resolve_device, train

    header, ex = _STATE["header"], _STATE["examples"]
    fold = header["final"] if job["fold"] == "final" else header["folds"][job["fold"]]
    cfg = TrainConfig(model=job["model"], epochs=job["epochs"], seed=0, device=job["device"])
    for k, v in RECIPES[header["data"]].items():
        setattr(cfg, k, v)
    card = ModelCard(name=job["model"], version="0.1.0", frontend=header["frontend"])
    tr, va = ([ex[i] for i in idx] for idx in fold["inner"])
    work = Path(job["work"]) / f"{header['data']}_{job['model']}_{job['fold']}.pt"
    tag = f"{header['data']} {job['model']} {job['fold']}"
    # Calibrate: time one epoch under the real load, then restart with as many epochs as fit the budget
    # (so the cosine schedule completes instead of being cut off half-way).
    t0 = time.perf_counter()
    train(tr, va, cfg, card, checkpoint=work, progress=False, stop_after=1)
    per_epoch = time.perf_counter() - t0
    cfg.epochs = int(max(1, min(cfg.epochs, 0.85 * (job["deadline"] - time.time()) / per_epoch)))
    work.unlink()
    print(f"{tag}: {per_epoch:.1f} s/epoch -> {cfg.epochs} epochs", flush=True)
    t0, result = time.perf_counter(), None
    while True:  # time-sliced so a deadline can stop it between chunks; resume continues the same run
        result = train(tr, va, cfg, card, checkpoint=work, resume=True, progress=False, stop_after=job["chunk"])
        done = len(result.history) >= cfg.epochs
        print(f"{tag}: epoch {len(result.history)}/{cfg.epochs}, best {result.best_epoch + 1}, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        if done or time.time() > job["deadline"]:
            break
    out = {k: job[k] for k in ("model", "fold")}
    out.update(epochs=cfg.epochs, calibration_s_per_epoch=round(per_epoch, 2), data=header["data"],
               epochs_run=len(result.history), best_epoch=result.best_epoch + 1,
               seconds=round(time.perf_counter() - t0, 1), history=result.history, stopped_by_deadline=not done,
               n_train=len(tr), n_val=len(va))
    model = result.model.to(resolve_device(cfg.device))
    norm = Normalizer.from_dict(result.card.normalization)
    if job["fold"] == "final":
        path = Path(job["out"]) / f"final_{header['data']}_{job['model']}.pt"
        save_checkpoint(path, cfg.model, cfg.model_kwargs, result.model.cpu(), result.card, config=vars(cfg),
                        history=result.history)
        # Predictions on the coded training frames, to compare with the exact frames in ``collect``.
        sample = [ex[i] for i in fold["inner"][1]]
        out["check"] = {e.id: p.tolist() for e, p in zip(sample, stream_predictions(
            torch_predictor(result.model), norm, sample), strict=True)}
    else:
        test = [ex[i] for i in fold["test"]]
        preds = stream_predictions(torch_predictor(model), norm, test)
        out["preds"] = {e.id: np.round(p, 5).tolist() for e, p in zip(test, preds, strict=True)}
    (Path(job["out"]) / f"{header['data']}_{job['model']}_{job['fold']}.json").write_text(json.dumps(out))
    return {k: out[k] for k in ("data", "model", "fold", "epochs_run", "best_epoch", "seconds")}


def run(args: argparse.Namespace) -> None:
    import multiprocessing as mp

    header, _ = read_pack(args.pack)
    deadline = time.time() + args.budget_s
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    folds = [*range(len(header["folds"]))] + (["final"] if args.final else [])
    jobs = [{"model": m, "fold": f, "epochs": args.epochs, "device": args.device, "chunk": args.chunk,
             "deadline": deadline, "out": str(out), "work": str(work)} for m in args.models for f in folds]
    print(f"{header['data']}: {len(jobs)} jobs on {args.procs} processes, budget {args.budget_s} s", flush=True)
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.procs, initializer=_worker_init, initargs=(args.pack, args.threads)) as pool:
        for r in pool.imap_unordered(_job, jobs):
            print(json.dumps(r), flush=True)


# -- collect (here) ---------------------------------------------------------------------------------------


def collect(args: argparse.Namespace) -> None:
    from emotrack.training.commands import machine_facts
    from emotrack.training.evaluate import evaluate_predictions
    from emotrack.training.examples import load_examples
    from emotrack.training.trainer import Example

    results = Path(args.results)
    clips = load_clips(args.data, args.data_root, args.render_cache)
    examples, _ = load_examples(clips, args.cache, workers=1, progress=False)
    by_id = {e.id: e for e in examples}
    device = json.loads((results / "device.json").read_text()) if (results / "device.json").exists() else {}
    for model in args.models:
        files = sorted(results.glob(f"{args.data}_{model}_[0-9]*.json"))
        if not files:
            print(f"{args.data} {model}: no results")
            continue
        per_fold, all_ex, all_preds = [], [], []
        for f in files:
            r = json.loads(f.read_text())
            ex: list[Example] = [by_id[i] for i in r["preds"]]
            preds = [np.asarray(p, np.float32) for p in r["preds"].values()]
            m = evaluate_predictions(ex, preds)
            row = {k: r[k] for k in ("fold", "epochs_run", "best_epoch", "n_train", "n_val", "stopped_by_deadline")}
            row.update(n_test=len(ex), train_seconds=r["seconds"], history=r["history"])
            if "quadrant" in m:
                row.update({k: m["quadrant"][k] for k in m["quadrant"] if k != "per_class"})
                row["vote_weighted_f1"] = m["quadrant_vote"]["weighted_f1"]
            if "regression" in m:
                row["regression"] = m["regression"]
            per_fold.append(row)
            all_ex += ex
            all_preds += preds
        pooled = evaluate_predictions(all_ex, all_preds)
        summary: dict[str, Any] = {
            "model": model, "data": args.data, "folds": len(per_fold), "split": args.split_text or "",
            "per_fold": per_fold, "epochs": per_fold[0]["epochs_run"] if per_fold else None,
            "device": device, "machine_collect": machine_facts(), "command": "python -m bench.accuracy.device_cv "
            + " ".join(shlex.quote(a) for a in sys.argv[1:]), "run_command": args.run_command,
        }
        if "quadrant" in pooled:
            keys = ("weighted_f1", "accuracy", "precision", "recall", "arousal_sign_accuracy",
                    "valence_sign_accuracy", "vote_weighted_f1")
            summary["mean"] = {k: float(np.mean([f[k] for f in per_fold])) for k in keys}
            summary["std"] = {k: float(np.std([f[k] for f in per_fold])) for k in keys}
            summary["pooled"] = {k: pooled["quadrant"][k] for k in (*keys[:-1], "confusion_matrix")}
        if "regression" in pooled:
            summary["pooled_regression"] = pooled["regression"]
        out = Path(args.out) / f"{model}_{args.data}_gpu_cv.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=1))
        head = summary.get("mean", {}).get("weighted_f1")
        reg = summary.get("pooled_regression", {}).get("global", {})
        print(f"{args.data} {model}: folds {len(per_fold)}, epochs {summary['epochs']}, "
              f"wF1 {head if head is None else round(100 * head, 1)}, "
              f"global CCC V {reg.get('valence_ccc')}, A {reg.get('arousal_ccc')} -> {out}")


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    pk = sub.add_parser("pack", help="write a data set's coded features, labels and folds (here)")
    pk.add_argument("data", choices=["4q", "vgmidi", "emopia"])
    pk.add_argument("--out", required=True)
    rn = sub.add_parser("run", help="train all (model, fold) jobs of a pack (GPU machine)")
    rn.add_argument("pack")
    rn.add_argument("--models", nargs="+", default=["damff", "adff", "dsaml"])
    rn.add_argument("--epochs", type=int, default=40)
    rn.add_argument("--final", action="store_true", help="also train the final model on all clips")
    rn.add_argument("--procs", type=int, default=8)
    rn.add_argument("--threads", type=int, default=1)
    rn.add_argument("--device", default="auto")
    rn.add_argument("--chunk", type=int, default=5, help="epochs between deadline checks")
    rn.add_argument("--budget-s", type=float, default=420.0, help="stop training jobs after this many seconds")
    rn.add_argument("--out", default=os.environ.get("OUT", "device_results"))
    rn.add_argument("--work", default="/tmp/device_cv_work")
    co = sub.add_parser("collect", help="score returned predictions on the exact labels (here)")
    co.add_argument("data", choices=["4q", "vgmidi", "emopia"])
    co.add_argument("results")
    co.add_argument("--models", nargs="+", default=["mca", "damff", "adff", "dsaml"])
    co.add_argument("--out", default="bench/accuracy")
    co.add_argument("--split-text", default=None)
    co.add_argument("--run-command", default=None, help="the device command line, recorded in the JSON")
    for sp in (pk, co):
        sp.add_argument("--data-root", default="../shared/data")
        sp.add_argument("--cache", default=".cache/features")
        sp.add_argument("--render-cache", default=".cache/emotrack")
    args = p.parse_args(argv)
    {"pack": pack, "run": run, "collect": collect}[args.step](args)


if __name__ == "__main__":
    main()
