"""The tracking recipe: graded targets, medleys with step targets, per-sequence CCC, the music head."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emotrack.export.metadata import ModelCard  # noqa: E402
from emotrack.export.onnx import export_onnx  # noqa: E402
from emotrack.inference import ModelRunner  # noqa: E402
from emotrack.training.losses import sequence_ccc_loss, sequence_pcc_loss  # noqa: E402
from emotrack.training.trainer import (  # noqa: E402
    GRADED_SCALE,
    Example,
    MedleyPool,
    TrainConfig,
    _sequence,
    quadrant_signs,
    train,
)

SMALL = {"d": 16, "hidden": 16, "music_head": True}


def _examples() -> list[Example]:
    rng = np.random.default_rng(0)
    music = [Example(f"m{q}", f"g{q}", rng.standard_normal((40, 25, 64)).astype(np.float32) + q, quadrant=q)
             for q in (1, 2, 3, 4)]
    quiet = Example("n0", "nonmusic", np.zeros((40, 25, 64), np.float32), 0, np.zeros((40, 2), np.float32), music=False)
    return [*music, quiet]


def test_graded_targets_are_the_deam_scale():
    e = _examples()[1]  # Q2
    targets, is_sign = e.hop_targets(graded=True)
    assert not is_sign
    np.testing.assert_allclose(targets[0], quadrant_signs(2) * np.array(GRADED_SCALE), rtol=1e-6)
    assert e.hop_targets()[1] is True  # the sign recipe is unchanged


def test_graded_scale_comes_from_deam_annotations(data_root):
    from emotrack.data.deam import graded_scale

    if not (data_root / "deam_annotations" / "dynamic_arousal.csv").exists():
        pytest.skip("DEAM annotations not found under ../shared/data")
    np.testing.assert_allclose(graded_scale(data_root / "deam_annotations"), GRADED_SCALE, atol=0.002)


def test_medley_cuts_to_another_quadrant_or_to_nonmusic_with_step_targets():
    examples = _examples()
    pool = MedleyPool(examples)
    cfg = TrainConfig(targets="graded", medley_p=1.0, nonmusic_p=0.5, crop_max_frames=0)
    rng = np.random.default_rng(1)
    seen_nonmusic = seen_music = 0
    for _ in range(40):
        frames, signs, cont, music, cuts = _sequence(examples[0], pool, cfg, rng)
        assert np.isnan(signs).all() and len(frames) == len(cont) == len(music)
        first = quadrant_signs(1) * np.array(GRADED_SCALE)
        if music.min() == 0:  # cut to (or from) silence: neutral targets there
            seen_nonmusic += 1
            np.testing.assert_array_equal(cont[music == 0], 0)
            np.testing.assert_allclose(cont[music == 1], np.tile(first, ((music == 1).sum(), 1)), rtol=1e-6)
        else:
            seen_music += 1
            np.testing.assert_allclose(cont[0], first, rtol=1e-6)
            assert len({tuple(r) for r in cont}) == 2  # one step to another quadrant
            change = np.flatnonzero(np.any(np.diff(cont, axis=0) != 0, axis=1))
            assert len(change) == 1 and change[0] + 1 >= 10  # the first clip lasts at least 5 s
            assert cuts == [change[0] + 1]
    assert seen_nonmusic and seen_music


def test_medleys_with_several_cuts_change_quadrant_at_every_cut():
    examples = _examples()
    pool = MedleyPool(examples)
    cfg = TrainConfig(targets="graded", medley_p=1.0, medley_cuts=3, nonmusic_p=0.0, crop_max_frames=0)
    rng = np.random.default_rng(2)
    for _ in range(20):
        frames, _, cont, music, cuts = _sequence(examples[0], pool, cfg, rng)
        assert len(cuts) == 3 and cuts[0] >= 10 and np.all(np.diff([*cuts, len(frames)]) >= 20)
        for before, after in zip([0, *cuts[:-1]], cuts, strict=True):  # a new quadrant at each cut
            assert not np.array_equal(cont[after - 1], cont[after]) and np.allclose(cont[before], cont[after - 1])


def test_cut_hops_score_the_hops_after_each_cut(monkeypatch):
    """With ``cut_hops`` the scored hops include that many of the 6 s after every cut."""
    import emotrack.training.trainer as trainer

    examples = _examples()
    model = trainer.build_model("mca", **SMALL)
    zero, one = torch.zeros(64), torch.ones(64)
    scored = {}
    for cut_hops in (0, 6):
        cfg = TrainConfig(targets="graded", medley_p=1.0, medley_cuts=2, nonmusic_p=0.0, hops_per_clip=4,
                          cut_hops=cut_hops, sequence_ccc=1.0, model_kwargs=SMALL)
        calls: list[int] = []
        monkeypatch.setattr(trainer, "sequence_ccc_loss", lambda p, t, ids, calls=calls: calls.append(len(ids)) or
                            p.sum() * 0)  # counts the hops scored
        trainer._batch_loss(model, examples[:1], zero, one, cfg, np.random.default_rng(3), MedleyPool(examples))
        scored[cut_hops] = calls[0]
    assert scored[0] == 4 and 4 + 6 <= scored[6] <= 4 + 2 * 6


def test_sequence_ccc_counts_only_sequences_that_move():
    target = torch.tensor([[0.3, 0.3]] * 8 + [[-0.3, 0.3]] * 8)
    seq = torch.tensor([0] * 8 + [1] * 8)
    moving = torch.tensor([[0.3, 0.3]] * 4 + [[-0.3, 0.3]] * 4)
    both = torch.cat([moving, moving])
    assert float(sequence_ccc_loss(target, target, seq)) == 0.0  # static sequences: nothing counted
    loss = sequence_ccc_loss(both, torch.cat([moving, moving]), seq)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    assert float(sequence_ccc_loss(-both, both, seq)) == pytest.approx(2.0, abs=1e-5)


def test_tracking_recipe_trains_and_exports_a_music_output(tmp_path):
    examples = _examples()
    cfg = TrainConfig(epochs=3, batch_clips=5, targets="graded", medley_p=0.5, sequence_ccc=0.5, hops_per_clip=8,
                      model_kwargs=SMALL)
    card = ModelCard(name="mca", version="0.0.0", frontend={"name": "logmel", "params": {}})
    res = train(examples, examples[:4], cfg, card, progress=False)
    assert all(np.isfinite(h["loss"]) for h in res.history)
    path = tmp_path / "m.onnx"
    export_onnx(res.model, res.card, path)
    runner = ModelRunner(path, provider="cpu")
    frames = np.zeros((3, 20, 25, 64), np.float32)
    out = runner.run(frames, np.ones((3, 20), np.float32))
    assert out["music"].shape == (3, 1) and ((out["music"] >= 0) & (out["music"] <= 1)).all()


def test_sequence_pcc_sees_only_the_movement():
    """Per-sequence PCC ignores a sequence's level and scale, which the CCC counts as error."""
    target = torch.tensor([[0.1, 0.4], [0.2, 0.5], [0.4, 0.5], [0.3, 0.6]] * 2)
    seq = torch.tensor([0] * 4 + [1] * 4)
    shifted = 0.25 * target - 0.3  # same movement, another level and scale
    assert float(sequence_pcc_loss(shifted, target, seq)) == pytest.approx(0.0, abs=1e-4)
    assert float(sequence_ccc_loss(shifted, target, seq)) > 0.5
    assert float(sequence_pcc_loss(-shifted, target, seq)) == pytest.approx(2.0, abs=1e-4)
    static = torch.full_like(target, 0.3)
    assert float(sequence_pcc_loss(shifted, static, seq)) == 0.0  # nothing moves: nothing counted
