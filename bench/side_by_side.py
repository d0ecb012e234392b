"""Side by side in one run: (a) one hop's model call in PyTorch eager vs ONNX Runtime (same weights), (b) the
incremental front end (``FrontEnd.process`` per hop) vs recomputing the whole 10 s window each hop
(``process_signal`` over the last 10 s).

Weights do not change the cost of a call, so each zoo model is built with ``build_model(name)`` (random init,
seed 0, eval mode; "mca-tonal" is mca on ``logmel_tonal``, the bundled default's configuration, "mca-musicnn" mca
on musicnn embeddings, timed without the musicnn network, which runs in the front end) and that same
module is exported with ``torch.onnx.export`` (opset 17, as emotrack.export does); torch and ORT therefore run
identical weights. Calls alternate (torch, ort, torch, ...) so drifting machine load hits
both equally. ORT uses emotrack's own session options (intra-op threads = N, sequential).

    python -m bench.side_by_side --threads 1 2 --iters 200
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from bench.common import long_audio, pct, save
from emotrack import HOP_SECONDS
from emotrack.frontends import make_frontend
from emotrack.models.registry import MODELS, build_model
from emotrack.ort_settings import session_options


def _time(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(1e3 * (time.perf_counter() - t0))
    return out


#: Benchmark name -> (zoo model, constructor kwargs); "mca-tonal" is the bundled default's configuration.
VARIANTS = {
    **{name: (name, {}) for name in MODELS},
    "mca-tonal": ("mca", {"frontend": "logmel_tonal"}),
    "mca-musicnn": ("mca", {"frontend": "musicnn"}),
}


def model_pair(name: str, threads: int, iters: int, provider: str, tmp: Path) -> dict:
    torch.manual_seed(0)
    model_name, kwargs = VARIANTS[name]
    model = build_model(model_name, **kwargs).eval()
    fe = make_frontend(model.frontend, None)
    shape = (1, model.context_frames, *fe.frame_shape)
    rng = np.random.default_rng(0)
    frames = rng.standard_normal(shape).astype(np.float32)
    mask = np.ones(shape[:2], np.float32)
    path = tmp / f"{name}.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(frames), torch.from_numpy(mask)), str(path),
                          input_names=["frames", "mask"], opset_version=17, dynamo=False,
                          dynamic_axes={"frames": {0: "batch"}, "mask": {0: "batch"}})
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if provider == "cuda" else ["CPUExecutionProvider"]
    sess = ort.InferenceSession(str(path), sess_options=session_options(threads), providers=providers)
    feeds = {"frames": frames, "mask": mask}
    tf, tm = torch.from_numpy(frames), torch.from_numpy(mask)
    torch.set_num_threads(threads)
    dev = "cuda" if provider == "cuda" and torch.cuda.is_available() else "cpu"
    model = model.to(dev)

    def run_torch():
        with torch.inference_mode():
            out = model(tf.to(dev), tm.to(dev))
            out = out[0] if isinstance(out, tuple) else out
            return out.cpu().numpy()

    def run_ort():
        return sess.run(None, feeds)[0]

    diff = float(np.max(np.abs(run_torch() - run_ort())))
    for _ in range(5):
        run_torch(), run_ort()
    t_torch, t_ort = [], []
    for _ in range(iters):
        t_torch += _time(run_torch, 1)
        t_ort += _time(run_ort, 1)
    pt, po = pct(t_torch), pct(t_ort)
    return {
        "model": name, "threads": threads, "input_shape": list(shape), "weights": "random init (seed 0), same in both",
        "max_abs_diff": diff, "torch_eager_ms": pt, "onnxruntime_ms": po,
        "ratio_torch_over_ort_p50": round(pt["p50"] / po["p50"], 2),
        "ratio_torch_over_ort_p99": round(pt["p99"] / po["p99"], 2),
        "params": int(sum(p.numel() for p in model.parameters())),
    }


def frontend_pair(name: str, iters: int, budget_s: float = 60.0) -> dict:
    """Incremental vs full-window cost of one front end: ``iters`` hops, or fewer once ``budget_s`` is spent
    (musicnn's full window costs about a second per hop)."""
    import soundfile as sf
    import soxr

    fe = make_frontend(name, None)
    audio, sr = sf.read(str(long_audio(max(60.0, (iters + 22) * HOP_SECONDS))), dtype="float32", always_2d=True)
    x = soxr.resample(audio.mean(1), sr, fe.sample_rate).astype(np.float32)
    hop, win = fe.hop_length, 20 * fe.hop_length
    fe.reset()
    for i in range(20):  # fill history
        fe.process(x[i * hop:(i + 1) * hop])
    t_inc, t_full = [], []
    start = time.perf_counter()
    for i in range(20, 20 + iters):
        if time.perf_counter() - start > budget_s:
            break
        h = x[i * hop:(i + 1) * hop]
        t0 = time.perf_counter()
        fe.process(h)
        t1 = time.perf_counter()
        fe.process_signal(x[(i + 1) * hop - win:(i + 1) * hop])
        t2 = time.perf_counter()
        t_inc.append(1e3 * (t1 - t0))
        t_full.append(1e3 * (t2 - t1))
    pi, pf = pct(t_inc), pct(t_full)
    return {"frontend": name, "hops": len(t_inc), "incremental_process_ms": pi, "full_10s_process_signal_ms": pf,
            "ratio_full_over_incremental_p50": round(pf["p50"] / pi["p50"], 1),
            "ratio_full_over_incremental_p99": round(pf["p99"] / pi["p99"], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=list(VARIANTS), choices=list(VARIANTS),
                    help="zoo models (default: all five plus mca on logmel_tonal and on musicnn)")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--provider", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            for t in args.threads:
                r = model_pair(name, t, args.iters, args.provider, Path(tmp))
                rows.append(r)
                print(f"{name:9s} t={t} torch p50 {r['torch_eager_ms']['p50']:8.3f} ort p50 "
                      f"{r['onnxruntime_ms']['p50']:8.3f} ms  ratio {r['ratio_torch_over_ort_p50']}", flush=True)
    fronts = [frontend_pair(n, args.iters) for n in ("logmel", "logmel_tonal", "musicnn", "wave")]
    for f in fronts:
        print(f"{f['frontend']}: incremental p50 {f['incremental_process_ms']['p50']} ms, full-window p50 "
              f"{f['full_10s_process_signal_ms']['p50']} ms, ratio {f['ratio_full_over_incremental_p50']}")
    save("side_by_side", {"models": rows, "frontends": fronts}, provider=args.provider)


if __name__ == "__main__":
    main()
