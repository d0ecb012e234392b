"""The musicnn front end before and after issue 13, side by side in one run on the same real audio: the windowed
computation (musicnn's converted graph on the newest 3 s every hop, what the front end did before) against the
streaming one (``Musicnn.process``: the hop's 32 new frames through the stateful graph), calls interleaved, one
ONNX Runtime thread each; plus the streaming graph with 2 threads, the default model's ``musicnn_tonal`` front end
(the same stream with a second pooling window and chroma/key columns, since ``mca-musicnn`` 0.4) and whole-file
``process_signal``.

    python -m bench.musicnn_stream --hops 300
"""

from __future__ import annotations

import argparse
import time

import onnxruntime as ort

from bench.common import long_audio, pct, save
from emotrack.assets import ASSETS
from emotrack.audio import load_audio
from emotrack.frontends.musicnn import Musicnn, load_network, musicnn_logmel
from emotrack.frontends.musicnn_tonal import MusicnnTonal
from emotrack.ort_settings import session_options

WINDOW = 512 + 186 * 256  # the windowed front end's 3.008 s (187 frames of 256 samples)
TONAL = "streaming musicnn_tonal (the 0.4 default's), 1 thread"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hops", type=int, default=300)
    ap.add_argument("--name", default="musicnn_stream")
    args = ap.parse_args()
    y = load_audio(long_audio(args.hops * 0.5 + 20), 16000)
    windowed = ort.InferenceSession(str(ASSETS / "frontends" / "musicnn_msd.onnx"), sess_options=session_options(1),
                                    providers=["CPUExecutionProvider"])
    stream = Musicnn()
    two = Musicnn()
    two.session, two._backend = load_network("msd", 2)
    tonal = MusicnnTonal()
    times: dict[str, list[float]] = {"windowed (before), 1 thread": [], "streaming (after), 1 thread": [],
                                     "streaming (after), 2 threads": [], TONAL: []}
    for h in range(args.hops):
        end = (h + 7) * 8000
        t0 = time.perf_counter()
        logmel = musicnn_logmel(y[end - WINDOW : end], stream._mel, stream._hann, hop=256)
        windowed.run(["penultimate"], {"logmel": logmel[None]})
        t1 = time.perf_counter()
        stream.process(y[end - 8000 : end])
        t2 = time.perf_counter()
        two.process(y[end - 8000 : end])
        t3 = time.perf_counter()
        tonal.process(y[end - 8000 : end])
        t4 = time.perf_counter()
        for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            times[key].append(1e3 * dt)
    rows = {k: pct(v[5:]) for k, v in times.items()}
    audio = y[: 600 * 8000]
    stream.process_signal(audio[:8000 * 64])  # warm the chunk shapes
    t0 = time.perf_counter()
    stream.process_signal(audio)
    whole = time.perf_counter() - t0
    for k, v in rows.items():
        print(f"{k}: p50 {v['p50']:.2f} ms, p99 {v['p99']:.2f} ms")
    print(f"process_signal on {len(audio) / 16000:.0f} s: {whole:.2f} s ({len(audio) / 16000 / whole:.0f}x real time)")
    save(args.name, {"hops": args.hops, "per_hop_ms": rows,
                     "ratio_windowed_over_streaming_p50": round(rows["windowed (before), 1 thread"]["p50"]
                                                                / rows["streaming (after), 1 thread"]["p50"], 1),
                     "ratio_windowed_over_tonal_p50": round(rows["windowed (before), 1 thread"]["p50"]
                                                            / rows[TONAL]["p50"], 1),
                     "process_signal": {"audio_s": len(audio) / 16000, "wall_s": round(whole, 3),
                                        "realtime_factor": round(len(audio) / 16000 / whole, 1)}})


if __name__ == "__main__":
    main()
