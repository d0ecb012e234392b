"""Training pipeline on a tiny real 4Q subset: feature cache, trainer, resume, streaming equivalence, metrics.

Needs the shared data folder next to the repository (``../shared/data``); skipped with a reason if absent.
Runs in well under a minute on 2 cores (8 clips, a small model, 2-3 epochs).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from emotrack.context import unfold  # noqa: E402
from emotrack.export.metadata import ModelCard  # noqa: E402
from emotrack.frontends import Normalizer, make_frontend  # noqa: E402
from emotrack.frontends.tonal import N_TONAL  # noqa: E402
from emotrack.models import build_model  # noqa: E402
from emotrack.training import metrics as M  # noqa: E402
from emotrack.training.evaluate import evaluate_predictions, stream_predictions, torch_predictor  # noqa: E402
from emotrack.training.losses import ccc_loss, sign_loss  # noqa: E402
from emotrack.training.trainer import (  # noqa: E402
    LOGMEL_MIN_STD,
    Example,
    TrainConfig,
    fit_normalizer,
    predict_clip,
    slide_contexts,
    train,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SMALL = {"d": 16, "hidden": 16}


# -- metrics (no data needed) ---------------------------------------------------------------------


def test_ccc_pcc_rmse_known_values():
    y = np.sin(np.linspace(0, 6, 50))
    assert M.ccc(y, y) == pytest.approx(1.0)
    assert M.pcc(y, y) == pytest.approx(1.0, abs=1e-6)
    assert M.rmse(y, y) == 0.0
    assert M.ccc(y + 0.5, y) < 1.0  # a bias lowers CCC ...
    assert M.pcc(y + 0.5, y) == pytest.approx(1.0, abs=1e-6)  # ... but not PCC
    assert M.rmse(y + 0.5, y) == pytest.approx(0.5)
    assert M.pcc(np.ones(5), y[:5]) == 0.0  # eps keeps constant series finite
    p, t = np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])
    # population moments: cov = 1/3, var = 2/3 each, equal means -> CCC = 2 * (1/3) / (4/3) = 0.5
    assert M.ccc(p, t) == pytest.approx(0.5)


def test_regression_metrics_per_song_vs_global_and_nan():
    a = np.stack([np.linspace(-1, 1, 10), np.linspace(1, -1, 10)], 1)
    b = a.copy()
    b[:3] = np.nan
    out = M.regression_metrics([a, a * 0.5], [a, b])
    assert out["per_song"]["n_songs"] == 2 and out["global"]["n_frames"] == 17
    assert out["per_song"]["valence_pcc"] == pytest.approx(1.0, abs=1e-6)
    assert out["per_song"]["valence_rmse"] > 0


def test_quadrants_and_classification_match_sklearn():
    from sklearn.metrics import accuracy_score, f1_score

    assert list(M.quadrant_of(np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]]))) == [1, 2, 3, 4]
    series = np.array([[0.9, -0.1], [0.8, -0.2], [-0.1, 0.9]])
    assert M.clip_quadrant(series, "mean") == 1  # mean (0.53, 0.2)
    assert M.clip_quadrant(series, "vote") == 4
    rng = np.random.default_rng(0)
    y, p = rng.integers(1, 5, 40), rng.integers(1, 5, 40)
    m = M.classification_metrics(y, p)
    assert m["weighted_f1"] == pytest.approx(f1_score(y, p, average="weighted"))
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert np.sum(m["confusion_matrix"]) == 40
    assert m["valence_sign_accuracy"] == pytest.approx(np.mean(np.isin(y, (1, 4)) == np.isin(p, (1, 4))))


def test_losses():
    logits = torch.tensor([[3.0, -3.0], [0.0, 0.0]])
    signs = torch.tensor([[1.0, -1.0], [float("nan"), 1.0]])
    good = sign_loss(logits, signs)
    assert torch.isfinite(good) and good < sign_loss(-logits, signs)
    x = torch.randn(30, 2)
    assert float(ccc_loss(x, x)) == pytest.approx(0.0, abs=1e-5)


# -- streaming equivalence ------------------------------------------------------------------------


def test_logmel_normalizer_floors_silent_bands():
    """A band that is almost always at the log floor (above a soundfont's bandwidth) is not scaled up ~1000x;
    bands that vary, as in real recordings, keep their own std."""
    rng = np.random.default_rng(0)
    frames = rng.normal(-6.0, 3.0, (400, 25, 4)).astype(np.float32)
    frames[..., 3] = np.log(1e-6)
    frames[7, 3, 3] += 2.0  # one stray note
    norm = fit_normalizer([Example("a", "g", frames, 1)], "logmel")
    assert np.allclose(norm.std[:3], frames[..., :3].std(axis=(0, 1)), rtol=1e-4)
    assert norm.std[3] == pytest.approx(LOGMEL_MIN_STD)
    assert np.abs(norm(frames)[..., 3]).max() < 5.0
    wave = fit_normalizer([Example("a", "g", np.full((10, 8000), 1e-4, np.float32), 1)], "wave")
    assert float(np.ravel(wave.std)[0]) < LOGMEL_MIN_STD  # the floor is for log-mel only


def test_tonal_columns_are_level_free_in_training():
    """Gain augmentation offsets only the mel columns of logmel_tonal frames; the normaliser floors the
    mel columns at LOGMEL_MIN_STD but gives the (0..1) chroma columns their own small std."""
    from emotrack.training.objectives import apply_gain, mel_columns

    rng = np.random.default_rng(0)
    frames = np.concatenate([rng.normal(-6.0, 0.01, (50, 25, 64)), rng.dirichlet(np.ones(12), (50, 25)),
                             rng.uniform(0, 1, (50, 25, 2))], -1).astype(np.float32)
    gained = apply_gain(torch.from_numpy(frames), 1.5, "logmel_tonal").numpy()
    np.testing.assert_allclose(gained[..., :64], frames[..., :64] + 1.5, atol=1e-5)
    np.testing.assert_array_equal(gained[..., 64:], frames[..., 64:])
    assert mel_columns("logmel_tonal", 64 + N_TONAL) == 64 and mel_columns("logmel", 64) == 64
    norm = fit_normalizer([Example("a", "g", frames, 1)], "logmel_tonal")
    assert np.allclose(norm.std[:64], LOGMEL_MIN_STD)
    np.testing.assert_allclose(norm.std[64:], frames[..., 64:].std(axis=(0, 1)), rtol=1e-4)


@pytest.mark.parametrize("kwargs", [{}, {"pool_stats": True}, {"extended": False}, {"frontend": "logmel_tonal"}])
def test_encode_slide_equals_full_forward_on_unfold(kwargs):
    torch.manual_seed(0)
    model = build_model("mca", **kwargs).eval()
    width = make_frontend(model.frontend).frame_shape[-1]
    frames = np.random.default_rng(0).standard_normal((33, 25, width)).astype(np.float32)
    ctx, mask = unfold(frames, model.context_frames)
    with torch.no_grad():
        full = model(torch.from_numpy(ctx), torch.from_numpy(mask)).numpy()
        emb = model.encode(torch.from_numpy(frames).unsqueeze(0))[0]
        sctx, smask = slide_contexts(emb, model.context_frames)
        assert np.array_equal(smask.numpy(), mask)
    np.testing.assert_allclose(predict_clip(model, frames), full, atol=1e-5)
    np.testing.assert_allclose(predict_clip(model, frames, stride=3), full[2::3], atol=1e-5)
    # Left truncation during training = masking the oldest frames; padding content must not matter.
    noisy = ctx.copy()
    noisy[mask == 0] = 7.0
    with torch.no_grad():
        again = model(torch.from_numpy(noisy), torch.from_numpy(mask)).numpy()
    np.testing.assert_allclose(again, full, atol=1e-5)


# -- real data ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_4q_clips):
    from emotrack.training.examples import load_examples

    clips = tiny_4q_clips
    cache_root = tmp_path_factory.mktemp("features")
    examples, cache = load_examples(clips, cache_root, workers=2, progress=False)
    return clips, examples, cache, cache_root


def test_feature_cache_built_and_reused(tiny):
    clips, examples, cache, cache_root = tiny
    assert len(examples) == 8 and sorted(e.quadrant for e in examples) == [1, 1, 2, 2, 3, 3, 4, 4]
    assert all(cache.path(c.audio_path).exists() for c in clips)
    assert all(e.frames.shape[1:] == (25, 64) and len(e.frames) >= 18 for e in examples)
    stamp = {c.id: cache.path(c.audio_path).stat().st_mtime_ns for c in clips}
    assert cache.build([c.audio_path for c in clips], progress=False) == 0  # nothing recomputed
    assert stamp == {c.id: cache.path(c.audio_path).stat().st_mtime_ns for c in clips}


def _card(cache) -> ModelCard:
    return ModelCard(name="mca", version="0.0.0", frontend={"name": "logmel", "params": cache.frontend_params})


def test_train_resume_and_evaluate(tiny, tmp_path):
    _, examples, cache, _ = tiny
    cfg = TrainConfig(epochs=2, batch_clips=4, model_kwargs=SMALL, hops_per_clip=6, patience=5)
    tr, va = examples[:6], examples[6:]
    ckpt = tmp_path / "run.pt"
    res = train(tr, va, cfg, _card(cache), checkpoint=ckpt, progress=False)
    losses = [h["loss"] for h in res.history]
    assert len(losses) == 2 and all(np.isfinite(losses))
    norm = fit_normalizer(tr)
    assert res.card.normalization["mean"] == pytest.approx(norm.mean.tolist())
    assert len(res.card.normalization["mean"]) == 64

    # Resume: a 3-epoch run interrupted after 2 epochs continues from the saved epoch ...
    cfg3 = TrainConfig(**{**cfg.__dict__, "epochs": 3, "ema": 0.9})
    part = train(tr, va, cfg3, _card(cache), checkpoint=tmp_path / "part.pt", progress=False, stop_after=2)
    assert [h["epoch"] for h in part.history] == [0, 1]
    resumed = train(tr, va, cfg3, _card(cache), checkpoint=tmp_path / "part.pt", resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    assert resumed.history[:2] == part.history
    # ... and reproduces an uninterrupted run (RNG, optimizer, scheduler and EMA state restored).
    fresh = train(tr, va, cfg3, _card(cache), checkpoint=tmp_path / "fresh.pt", progress=False)
    assert fresh.history[2]["loss"] == pytest.approx(resumed.history[2]["loss"], rel=1e-5)
    assert fresh.history[2]["score"] == pytest.approx(resumed.history[2]["score"], abs=1e-6)

    preds = stream_predictions(torch_predictor(res.model), Normalizer.from_dict(res.card.normalization), examples)
    out = evaluate_predictions(examples, preds)
    assert [c["n_hops"] for c in out["clips"]] == [len(e.frames) for e in examples]
    assert all(c["predicted"] in (1, 2, 3, 4) for c in out["clips"])
    assert 0.0 <= out["quadrant"]["weighted_f1"] <= 1.0


def test_continuous_targets_train(tiny):
    _, examples, cache, _ = tiny
    rng = np.random.default_rng(0)
    cont = [
        Example(e.id, e.group, e.frames, 0, np.tanh(rng.standard_normal((len(e.frames), 2))).astype(np.float32))
        for e in examples[:4]
    ]
    res = train(cont[:3], cont[3:], TrainConfig(epochs=1, model_kwargs=SMALL, hops_per_clip=4), _card(cache),
                progress=False)
    assert np.isfinite(res.history[0]["loss"]) and "val_ccc" in res.history[0]
    assert "regression" in evaluate_predictions(cont, [predict_clip(res.model, e.frames) for e in cont])


def test_train_main_tiny(tiny, tmp_path):
    _, _, _, cache_root = tiny
    from emotrack.cli import build_parser
    from emotrack.training.commands import evaluate_main, train_main

    onnx_path = tmp_path / "m.onnx"
    summary = train_main(build_parser().parse_args([
        "train", "mca", "--data-root", str(DATA), "--datasets", "4q", "--cache", str(cache_root),
        "--out", str(tmp_path / "run"), "--folds", "2", "--epochs", "1", "--limit", "16", "--export", str(onnx_path),
        "-q", "--hparams", '{"model_kwargs": {"d": 16, "hidden": 16}, "hops_per_clip": 4}',
    ]))
    assert 0.0 <= summary["cv"]["4q"]["weighted_f1"] <= 1.0 and onnx_path.exists()
    cv = json.loads((tmp_path / "run" / "mca_4q_cv.json").read_text())
    # the layout bench/accuracy/report.py reads from bench/accuracy/*_4q_cv.json
    assert cv["grouping"] == "artist" and cv["split"].startswith("StratifiedGroupKFold(n_splits=2")
    assert {"weighted_f1", "accuracy", "precision", "recall"} <= set(cv["mean"]) and "weighted_f1" in cv["std"]
    assert np.sum(cv["pooled"]["confusion_matrix"]) == 16 and len(cv["clips"]) == 16
    assert {"weighted_f1", "confusion_matrix", "history"} <= set(cv["per_fold"][0]) and cv["config"]["epochs"] == 1
    result = evaluate_main(build_parser().parse_args([
        "evaluate", str(onnx_path), "--data-root", str(DATA), "--cache", str(cache_root), "--limit", "8", "-q",
    ]))
    assert result["n_clips"] == 8 and len(result["clips"]) == 8 and result["datasets"]["4q"]["n_clips"] == 8
