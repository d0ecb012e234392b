"""Personalisation (issue 17): the curve checks, `emotrack personalize` end to end, the personal file, the page.

The always-available path uses the bundled example recording with a synthetic but plausible curve; the real
one renders one VGMIDI piece and takes one real annotator's own series (skips without ../shared/data). The
annotation page runs in real headless Chromium, its pointer and keys driven through DevTools.
"""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from emotrack.assets import EXAMPLE_AUDIO
from emotrack.inference import ModelRunner, resolve_model
from emotrack.personal.annotations import read_curve, write_curve
from emotrack.personal.head import Head, adapt, head_loss
from emotrack.personal.onnxpatch import OnnxBytes
from tests.conftest import assert_one_line_error, run_cli


def _example_curve(path: Path) -> Path:
    """Calm and unpleasant first, energetic and pleasant after 32 s (the recording is calm, then energetic)."""
    t = np.arange(0.5, 64.01, 0.5)
    v = np.where(t < 32, -0.4, 0.5) + 0.1 * np.sin(t / 3)
    a = np.where(t < 32, -0.6, 0.7) + 0.1 * np.cos(t / 5)
    return write_curve(path, t, np.stack([v, a], 1))


def _analyze(model: Path, out: Path) -> np.ndarray:
    result = run_cli("analyze", "--model", str(model), str(EXAMPLE_AUDIO), "--out", str(out))
    assert result.returncode == 0, result.stderr
    with open(out / "example.csv") as f:
        rows = list(csv.DictReader(f))
    return np.array([[float(r["time_s"]), float(r["valence"]), float(r["arousal"])] for r in rows])


def test_personalize_example_end_to_end(tmp_path: Path) -> None:
    curve = _example_curve(tmp_path / "curve.csv")
    out = tmp_path / "me.onnx"
    t0 = time.perf_counter()
    result = run_cli("personalize", "--audio", str(EXAMPLE_AUDIO), "--labels", str(curve), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert time.perf_counter() - t0 < 60
    info = json.loads(result.stdout)
    assert info["name"] == "mca-musicnn-personal" and info["steps"] > 0 and info["learning_rate"] > 0
    base = resolve_model(None)
    import hashlib

    assert info["base_model"]["sha256"] == hashlib.sha256(base.read_bytes()).hexdigest()
    assert info["song_sha256"] == hashlib.sha256(EXAMPLE_AUDIO.read_bytes()).hexdigest()
    for axis in ("valence", "arousal"):
        assert info["fit_after"][axis]["ccc"] > info["fit_before"][axis]["ccc"]
        assert info["fit_after"][axis]["rmse"] < info["fit_before"][axis]["rmse"]
    # the contract: loads like any model, same card keys, same graph; only two weights differ
    runner = ModelRunner(out, provider="cpu")
    assert runner.card.name == "mca-musicnn-personal"
    base_bytes, personal = OnnxBytes(base.read_bytes()), OnnxBytes(out.read_bytes())
    assert personal.nodes() == base_bytes.nodes()
    assert set(personal.metadata()) == set(base_bytes.metadata()) | {"emotrack.personal"}
    assert len(out.read_bytes()) - len(base.read_bytes()) < 8000  # the weights and graph bytes are the same size
    # analyze loads it, and its outputs moved toward the curve
    before, after = _analyze(base, tmp_path / "a0"), _analyze(out, tmp_path / "a1")
    target = read_curve(curve).on_hops(len(before))[0]
    err0 = np.abs(before[:, 1:] - target).mean(0)
    err1 = np.abs(after[:, 1:] - target).mean(0)
    assert np.all(err1 < err0), (err0, err1)
    # `run` streams it like any model: the same values as `analyze`
    ran = run_cli("run", "--model", str(out), "--file", str(EXAMPLE_AUDIO), "--fast", "--no-ws", "--no-osc",
                  "--no-osc-in", "--quiet", "--csv", str(tmp_path / "run.csv"))
    assert ran.returncode == 0, ran.stderr
    with open(tmp_path / "run.csv") as f:
        live = np.array([[float(r["valence"]), float(r["arousal"])] for r in csv.DictReader(f)])
    assert np.abs(live - after[: len(live), 1:]).max() < 1e-4


def test_onnx_checker_accepts_personal_file(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx", reason="onnx is in the train extra")
    from emotrack.personal.personalize import personalize

    res = personalize(EXAMPLE_AUDIO, _example_curve(tmp_path / "c.csv"), out=tmp_path / "p.onnx", steps=5)
    onnx.checker.check_model(onnx.load(str(res.out)))
    assert res.seconds < 60


def test_head_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    fused = rng.normal(size=(80, 3, 8)) * 0.3
    targets = np.clip(rng.normal(size=(80, 2)) * 0.4, -1, 1)
    base = Head(rng.normal(size=(2, 8)) * 0.3, rng.normal(size=2) * 0.1)
    head = Head(base.w + 0.05, base.b - 0.02)
    loss, grad = head_loss(fused, targets, head, base, l2=0.1)
    eps = 1e-6
    for idx in [(0, 0), (1, 5)]:
        h = head.copy()
        h.w[idx] += eps
        assert abs((head_loss(fused, targets, h, base, 0.1)[0] - loss) / eps - grad.w[idx]) < 1e-4
    h = head.copy()
    h.b[1] += eps
    assert abs((head_loss(fused, targets, h, base, 0.1)[0] - loss) / eps - grad.b[1]) < 1e-4
    adapted, history = adapt(fused, targets, base, steps=50, lr=0.1, l2=0.0)
    assert history[-1] < history[0]


def test_ensemble_head_is_the_mean_of_its_members_and_its_gradient_is_exact() -> None:
    from emotrack.personal.head import predict

    rng = np.random.default_rng(1)
    fused = rng.normal(size=(60, 2, 3, 8)) * 0.3  # [hops, members, outputs, H]
    targets = np.clip(rng.normal(size=(60, 2)) * 0.4, -1, 1)
    base = Head(rng.normal(size=(2, 2, 8)) * 0.3, rng.normal(size=(2, 2)) * 0.1)
    singles = [predict(fused[:, k], Head(base.w[k], base.b[k])) for k in range(2)]
    np.testing.assert_allclose(predict(fused, base), np.mean(singles, axis=0), atol=1e-12)
    head = Head(base.w + 0.05, base.b - 0.02)
    loss, grad = head_loss(fused, targets, head, base, l2=0.1)
    eps = 1e-6
    for idx in [(0, 0, 0), (1, 1, 5)]:
        h = head.copy()
        h.w[idx] += eps
        assert abs((head_loss(fused, targets, h, base, 0.1)[0] - loss) / eps - grad.w[idx]) < 1e-4
    h = head.copy()
    h.b[1, 0] += eps
    assert abs((head_loss(fused, targets, h, base, 0.1)[0] - loss) / eps - grad.b[1, 0]) < 1e-4
    assert adapt(fused, targets, base, steps=50, lr=0.1, l2=0.0)[1][-1] < loss


def test_personal_models_folder_is_listed_and_resolved(tmp_path: Path) -> None:
    from emotrack.personal.personalize import personalize

    folder = tmp_path / "models"
    personalize(EXAMPLE_AUDIO, _example_curve(tmp_path / "c.csv"), out=folder / "mine.onnx", steps=3)
    env = {"EMOTRACK_MODELS": str(folder)}
    listed = run_cli("models", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    cards = json.loads(listed.stdout)
    mine = [c for c in cards if c["name"] == "mca-musicnn-personal"]
    assert len(mine) == 1 and Path(mine[0]["file"]).name == "mine.onnx"
    assert cards[0]["name"] == "mca-musicnn"  # the default stays first
    analysed = run_cli("analyze", "--model", "mine", str(EXAMPLE_AUDIO), "--out", str(tmp_path / "o"), env=env)
    assert analysed.returncode == 0, analysed.stderr


BAD_CURVES = {
    "short": ("time_s,valence,arousal\n" + "".join(f"{t / 2},0.{t % 9},0.1\n" for t in range(1, 30)),
              "at least 20 s"),
    "range": ("time_s,valence,arousal\n" + "".join(f"{t / 2},{1.5 if t == 7 else 0.2 * (t % 3)},0\n"
                                                   for t in range(1, 60)), "[-1, 1]"),
    "flat": ("time_s,valence,arousal\n" + "".join(f"{t / 2},0.2,-0.1\n" for t in range(1, 60)), "flat"),
    "order": ("time_s,valence,arousal\n" + "".join(f"{t / 2 if t != 20 else 3},{0.1 * (t % 5)},0\n"
                                                   for t in range(1, 60)), "times must increase"),
    "text": ("time_s,valence,arousal\n0.5,0.1,0.2\nabc,0.1,0.2\n", "not a number"),
    "header": ("t,v,a\n0.5,0.1,0.2\n", "header must be"),
    "beyond": ("time_s,valence,arousal\n" + "".join(f"{t},{0.1 * (t % 5)},0\n" for t in range(1, 90)),
               "audio lasts"),
}


@pytest.mark.parametrize("kind", sorted(BAD_CURVES))
def test_bad_annotation_is_one_line_error(tmp_path: Path, kind: str) -> None:
    text, fragment = BAD_CURVES[kind]
    path = tmp_path / f"{kind}.csv"
    path.write_text(text)
    result = run_cli("personalize", "--audio", str(EXAMPLE_AUDIO), "--labels", str(path), "--out",
                     str(tmp_path / "x.onnx"))
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "x.onnx").exists()


def test_missing_labels_file_is_one_line_error(tmp_path: Path) -> None:
    result = run_cli("personalize", "--audio", str(EXAMPLE_AUDIO), "--labels", str(tmp_path / "none.csv"))
    assert_one_line_error(result, "not found")


def _vgmidi_piece(data_root: Path, tmp_path: Path):
    pytest.importorskip("pretty_midi", reason="reading VGMIDI bar starts needs the train extra (pretty_midi)")
    from emotrack.data.render import render_clips
    from emotrack.data.vgmidi import load_vgmidi

    clips = load_vgmidi(data_root, progress=False)
    clip = min((c for c in clips if 40 <= c.meta["duration"] <= 70), key=lambda c: c.meta["duration"])
    try:
        (clip,) = render_clips([clip], tmp_path / "render", workers=1, progress=False)
    except Exception as exc:  # no fluidsynth / sound font on this machine
        pytest.skip(f"cannot render MIDI here: {exc}")
    return clip


def test_personalize_real_vgmidi_annotator(data_root: Path, tmp_path: Path) -> None:
    """A real rendered VGMIDI piece and one real annotator's own series (not the mean) in, a valid model out."""
    clip = _vgmidi_piece(data_root, tmp_path)
    spread = [np.std(v) + np.std(a) for v, a in clip.annotators]
    v, a = clip.annotators[int(np.argmax(spread))]
    t = 0.5 * (np.arange(len(v)) + 1)
    curve = write_curve(tmp_path / "annotator.csv", t, np.stack([v, a], 1))
    out = tmp_path / "annotator.onnx"
    result = run_cli("personalize", "--audio", str(clip.audio_path), "--labels", str(curve), "--out", str(out),
                     "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["fit_after"]["arousal"]["rmse"] <= info["fit_before"]["arousal"]["rmse"]
    analysed = run_cli("analyze", "--model", str(out), str(clip.audio_path), "--out", str(tmp_path / "o"))
    assert analysed.returncode == 0, analysed.stderr


# -- the annotation page in headless Chromium ------------------------------------------------------------------

PATH = [(0.0, (-0.5, -0.5)), (5.0, (0.5, -0.4)), (10.0, (0.6, 0.6)), (15.0, (-0.4, 0.3))]
"""(from audio time, point): the path the simulated pointer follows."""


def _expected(t: float) -> tuple[float, float]:
    return [p for start, p in PATH if t >= start][-1]


def test_annotation_page_records_the_pointer_path(tmp_path: Path) -> None:
    from tests.cdp import Browser, chromium_path

    if chromium_path() is None:
        pytest.skip("no Chromium on this machine")
    import soundfile as sf

    from emotrack.personal.server import AnnotationServer

    song = tmp_path / "song.wav"
    sr = 8000
    tt = np.arange(int(24 * sr)) / sr
    sf.write(song, (0.2 * np.sin(2 * np.pi * 220 * tt)).astype(np.float32), sr)
    out = tmp_path / "curve.csv"
    server = AnnotationServer(song, out, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Browser(extra_args=["--autoplay-policy=no-user-gesture-required"]) as browser:
            page = browser.new_page(server.url, width=800, height=1000)
            page.wait_for("window.annotator && document.getElementById('audio').readyState >= 1")
            box = page.evaluate("(() => { const r = document.getElementById('plane').getBoundingClientRect(); "
                                "return [r.left, r.top, r.width, r.height]; })()")

            def xy(v: float, a: float) -> dict:
                return {"x": box[0] + (v + 1) / 2 * box[2], "y": box[1] + (1 - a) / 2 * box[3]}

            page.send("Input.dispatchMouseEvent", {"type": "mousePressed", "button": "left", "buttons": 1,
                                                   "clickCount": 1, **xy(*PATH[0][1])})
            page.evaluate("(() => { const a = document.getElementById('audio'); a.playbackRate = 4; "
                          "return a.play().then(() => true); })()")
            current = PATH[0][1]
            while True:
                t = page.evaluate("document.getElementById('audio').currentTime")
                if page.evaluate("document.getElementById('audio').ended") or t > 22:
                    break
                if _expected(t) != current:
                    current = _expected(t)
                    page.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "button": "left", "buttons": 1,
                                                           **xy(*current)})
                time.sleep(0.02)
            page.send("Input.dispatchMouseEvent", {"type": "mouseReleased", "button": "left", "buttons": 0,
                                                   "clickCount": 1, **xy(*current)})
            page.evaluate("document.getElementById('audio').pause()")
            before = page.evaluate("[annotator.point.v, annotator.point.a]")
            page.evaluate("document.getElementById('plane').focus()")
            for _ in range(3):
                for kind in ("keyDown", "keyUp"):
                    page.send("Input.dispatchKeyEvent", {"type": kind, "key": "ArrowUp", "code": "ArrowUp",
                                                         "windowsVirtualKeyCode": 38})
            moved = page.evaluate("[annotator.point.v, annotator.point.a]")
            assert moved[0] == pytest.approx(before[0]) and moved[1] == pytest.approx(before[1] + 0.15, abs=1e-6)
            page.click("#save")
            page.wait_for("annotator.isSaved() || document.getElementById('status').className === 'error'", 10)
            assert page.evaluate("annotator.isSaved()"), page.evaluate("document.getElementById('status').textContent")
            assert not page.exceptions
    finally:
        server.shutdown()
        server.server_close()
    curve = read_curve(out)
    assert curve.times[0] == pytest.approx(0.5) and np.allclose(np.diff(curve.times), 0.5)
    assert curve.times[-1] >= 21.5
    checked = 0
    for t, (v, a) in zip(curve.times, curve.va, strict=True):
        if min(abs(t - start) for start, _ in PATH[1:]) < 1.5:  # a DevTools round trip from the switch
            continue
        ev, ea = _expected(t)
        assert abs(v - ev) < 0.02 and abs(a - ea) < 0.02, (t, v, a)
        checked += 1
    assert checked >= 20


def test_annotation_server_refuses_bad_curve_and_foreign_host(tmp_path: Path) -> None:
    import http.client

    from emotrack.personal.server import AnnotationServer

    server = AnnotationServer(EXAMPLE_AUDIO, tmp_path / "c.csv", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = json.dumps({"time_s": [0.5, 1.0], "valence": [0.1, 0.2], "arousal": [0, 0]})
        conn.request("POST", "/curve", body, {"Content-Type": "application/json"})
        reply = conn.getresponse()
        assert reply.status == 400 and "20 s" in json.loads(reply.read())["error"]
        conn.request("GET", "/audio", headers={"Range": "bytes=0-99"})
        reply = conn.getresponse()
        assert reply.status == 206 and len(reply.read()) == 100
        conn.request("GET", "/", headers={"Host": "evil.example:80"})
        reply = conn.getresponse()
        assert reply.status == 403
        reply.read()
    finally:
        server.shutdown()
        server.server_close()
    assert not (tmp_path / "c.csv").exists()


def test_meta_training_inner_loop_is_the_personalize_one(tmp_path: Path) -> None:
    """Torch's fused vectors equal the ONNX graph's (so meta-training adapts what `personalize` adapts), and a
    few first-order MAML steps run and move the weights."""
    torch = pytest.importorskip("torch", reason="meta-training needs the train extra")
    from emotrack.assets import ASSETS
    from emotrack.audio import load_audio
    from emotrack.personal.personalize import FusedExtractor
    from emotrack.training.checkpoint import load_checkpoint
    from emotrack.training.meta import AnnotatedPiece, MetaSettings, fused_vectors, meta_train

    torch.set_num_threads(1)
    model, _, payload = load_checkpoint(ASSETS / "checkpoints" / "mca-musicnn.pt")
    runner = ModelRunner("mca-musicnn", provider="cpu")
    frames = runner.normalizer(runner.frontend.process_signal(load_audio(EXAMPLE_AUDIO, 16000)[: 16000 * 40]))
    onnx_fused, _ = FusedExtractor(runner.path).run(frames, 20)
    if payload["model"] == "ensemble":  # the default is a seed ensemble: meta-train its first member
        model, onnx_fused = model.members[0], onnx_fused[:, 0]  # member 0 reads the ensemble's normalisation
    with torch.no_grad():
        torch_fused = fused_vectors(model, torch.from_numpy(frames)).numpy()
    assert np.abs(onnx_fused - torch_fused).max() < 1e-4
    rng = np.random.default_rng(0)
    pieces = [AnnotatedPiece(f"p{i}", frames[rng.permutation(len(frames))] if i else frames,
                             [np.clip(rng.normal(size=(len(frames), 2)) * 0.3, -1, 1).astype(np.float32)
                              for _ in range(3)]) for i in range(3)]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model, history = meta_train(model, pieces, MetaSettings(episodes=2, meta_batch=4, query_hops=16, inner_steps=4))
    assert len(history) == 2 and all(np.isfinite(history))
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert "head.fusion.heads" in changed and any(k.startswith("head.branches") for k in changed)
