"""Seed ensembles: the mean of their members exactly, through training's scoring and the exported ONNX file.

The data test trains two tiny runs of one recipe (different hparams seeds) on real 4Q clips and combines them
with ``emotrack train --ensemble``; skipped with a reason when ``../shared/data`` is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from emotrack.cli import build_parser  # noqa: E402
from emotrack.errors import ConfigError  # noqa: E402
from emotrack.frontends import Normalizer  # noqa: E402
from emotrack.models import build_model  # noqa: E402
from emotrack.models.ensemble import Ensemble  # noqa: E402
from emotrack.training.ensemble import normalisation_maps  # noqa: E402
from emotrack.training.trainer import predict_clip  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SMALL = {"d": 16, "hidden": 16, "music_head": True}


def test_ensemble_is_the_mean_of_its_members_under_their_own_normalisation():
    rng = np.random.default_rng(0)
    members = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        members.append(build_model("mca", **SMALL).eval())
    norms = [Normalizer(rng.normal(0, 1, 64), rng.uniform(0.5, 2, 64)) for _ in members]
    raw = rng.normal(0, 2, (30, 25, 64)).astype(np.float32)
    scale, shift = normalisation_maps(norms[0], norms)
    ens = Ensemble([{"model": "mca", "kwargs": SMALL}] * 3, scale.tolist(), shift.tolist())
    for member, single in zip(ens.members, members, strict=True):
        member.load_state_dict(single.state_dict())
    ens.eval()

    want = np.mean([predict_clip(m, n(raw)) for m, n in zip(members, norms, strict=True)], axis=0)
    np.testing.assert_allclose(predict_clip(ens, norms[0](raw)), want, atol=1e-5)
    # The full graph (what is exported) gives the same values and the mean music probability.
    from emotrack.context import unfold

    ctx, mask = unfold(norms[0](raw), ens.context_frames)
    with torch.no_grad():
        va, music = ens(torch.from_numpy(ctx), torch.from_numpy(mask))
        singles = [m(torch.from_numpy(unfold(n(raw), 20)[0]), torch.from_numpy(mask))
                   for m, n in zip(members, norms, strict=True)]
    np.testing.assert_allclose(va.numpy(), want, atol=1e-5)
    np.testing.assert_allclose(music.numpy(), np.mean([s[1].numpy() for s in singles], axis=0), atol=1e-6)
    rebuilt = build_model("ensemble", **ens.init_kwargs())
    rebuilt.load_state_dict(ens.state_dict())
    np.testing.assert_allclose(predict_clip(rebuilt.eval(), norms[0](raw)), want, atol=1e-5)


def test_members_must_match():
    with pytest.raises(ValueError, match="at least two"):
        Ensemble([{"model": "mca", "kwargs": SMALL}])
    with pytest.raises(ValueError, match="same front end"):
        Ensemble([{"model": "mca", "kwargs": SMALL}, {"model": "mca", "kwargs": {**SMALL, "music_head": False}}])


def _train(args: list[str]) -> dict:
    from emotrack.training.commands import train_main

    return train_main(build_parser().parse_args(["train", "mca", *args]))


def test_train_ensemble_of_two_seeds_scores_and_exports_their_mean(tmp_path, tiny_4q_clips):
    from emotrack.training.checkpoint import load_checkpoint
    from emotrack.training.evaluate import onnx_predictor, stream_predictions, torch_predictor

    common = ["--data-root", str(DATA), "--datasets", "4q", "--cache", str(tmp_path / "cache"), "--folds", "2",
              "--epochs", "1", "--limit", "16", "-q"]
    hp = {"model_kwargs": SMALL, "hops_per_clip": 4}
    for seed in (0, 1):
        _train([*common, "--out", str(tmp_path / f"s{seed}"), "--hparams", json.dumps({**hp, "seed": seed})])
    onnx_path = tmp_path / "ens.onnx"
    summary = _train([*common, "--out", str(tmp_path / "ens"), "--hparams", json.dumps(hp), "--export",
                      str(onnx_path), "--ensemble", str(tmp_path / "s0"), str(tmp_path / "s1")])
    cv = json.loads(Path(summary["cv_results"]).read_text())
    assert [len(f["members"]) for f in cv["per_fold"]] == [2, 2]
    assert [m["seed"] for m in cv["per_fold"][0]["members"]] == [0, 1]

    # The fold ensemble's scored predictions are the mean of its two members' own streamed predictions.
    from emotrack.training.examples import load_examples

    examples, _ = load_examples(tiny_4q_clips[:2], tmp_path / "cache", progress=False)
    model, card, payload = load_checkpoint(tmp_path / "ens" / "fold0_best.pt")
    assert payload["model"] == "ensemble"
    singles = [load_checkpoint(tmp_path / f"s{s}" / "fold0_best.pt") for s in (0, 1)]
    want = [np.mean(x, axis=0) for x in zip(*[stream_predictions(
        torch_predictor(m), Normalizer.from_dict(c.normalization), examples) for m, c, _ in singles], strict=True)]
    got = stream_predictions(torch_predictor(model), Normalizer.from_dict(card.normalization), examples)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-5)

    # The exported final ensemble runs in ONNX Runtime as one file and says what it is.
    predict, onnx_card = onnx_predictor(str(onnx_path))
    assert onnx_card.architecture.startswith("mean of 2 x ")
    assert [m["seed"] for m in onnx_card.training["members"]] == [0, 1]
    final, final_card, _ = load_checkpoint(tmp_path / "ens" / "final_best.pt")
    norm = Normalizer.from_dict(final_card.normalization)
    np.testing.assert_allclose(predict(norm(examples[0].frames)), predict_clip(final, norm(examples[0].frames)),
                               atol=1e-4)

    # Runs split another way (another --seed) are refused with a clear error.
    _train([*common, "--seed", "3", "--no-final", "--out", str(tmp_path / "other"), "--hparams", json.dumps(hp)])
    with pytest.raises(ConfigError, match="split differently"):
        _train([*common, "--out", str(tmp_path / "bad"), "--hparams", json.dumps(hp), "--no-final",
                "--ensemble", str(tmp_path / "s0"), str(tmp_path / "other")])


def test_an_ensemble_is_personalised_on_its_mean(tmp_path):
    """`emotrack personalize` adapts every member's output layer of an exported ensemble; its numpy head is the
    graph's (the extractor checks that), and the fit on the annotated song improves."""
    from emotrack.assets import ASSETS, EXAMPLE_AUDIO
    from emotrack.export.onnx import export_onnx
    from emotrack.personal.personalize import FusedExtractor, personalize
    from emotrack.training.checkpoint import load_checkpoint, save_checkpoint
    from emotrack.training.ensemble import combine_checkpoints

    model, card, payload = load_checkpoint(ASSETS / "checkpoints" / "mca-musicnn.pt")
    spec = {"model": payload["model"], "kwargs": payload["kwargs"]}
    if payload["model"] == "ensemble":  # the bundled default is one: take its first member
        model, spec = model.members[0], payload["kwargs"]["members"][0]
    with torch.no_grad():  # a second "seed": the same network with other output layers
        other = build_model(spec["model"], **spec["kwargs"])
        other.load_state_dict(model.state_dict())
        other.head.fusion.heads.mul_(0.5)
        other.head.fusion.bias.add_(0.2)
    for name, m in (("a", model), ("b", other)):
        save_checkpoint(tmp_path / f"{name}.pt", spec["model"], spec["kwargs"], m, card)
    ens, ens_card, _ = combine_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"])
    export_onnx(ens, ens_card, tmp_path / "ens.onnx")

    extractor = FusedExtractor(tmp_path / "ens.onnx")
    assert extractor.prefixes == ["members.0.", "members.1."] and extractor.base.w.shape[:2] == (2, 2)
    t = np.arange(0.5, 64.01, 0.5)
    curve = tmp_path / "c.csv"
    curve.write_text("time_s,valence,arousal\n" + "".join(
        f"{x},{-0.4 if x < 32 else 0.5},{-0.3 if x < 32 else 0.6}\n" for x in t))
    res = personalize(EXAMPLE_AUDIO, curve, model=tmp_path / "ens.onnx", out=tmp_path / "p.onnx", steps=16)
    assert res.info["fit_after"]["arousal"]["ccc"] > res.info["fit_before"]["arousal"]["ccc"]
    adapted = FusedExtractor(res.out)  # the written file is still the mean of its members' heads
    assert not np.allclose(adapted.base.w, extractor.base.w)
