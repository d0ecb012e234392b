"""Every bundled model: PyTorch and ONNX Runtime agree on real audio, and it carries its metrics."""

from __future__ import annotations

import numpy as np
import pytest

from emotrack.assets import ASSETS
from emotrack.inference import DEFAULT_MODEL, ModelRunner, bundled_models

torch = pytest.importorskip("torch")

BUNDLED = sorted(bundled_models())


def test_default_model_is_bundled():
    assert DEFAULT_MODEL in BUNDLED


def test_default_model_is_the_most_accurate_bundled_model():
    """The default is chosen by the numbers each model carries, not by hope."""
    f1 = {name: ModelRunner(name, provider="cpu").card.metrics["4q_cv"]["weighted_f1"] for name in BUNDLED}
    assert f1[DEFAULT_MODEL] == max(f1.values()), f1


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_matches_its_pytorch_checkpoint(name):
    from emotrack.export.onnx import parity_contexts
    from emotrack.training.checkpoint import load_checkpoint

    checkpoint = ASSETS / "checkpoints" / f"{name}.pt"
    assert checkpoint.exists(), f"{name}.onnx is bundled without its training checkpoint"
    model, card, _ = load_checkpoint(checkpoint)
    runner = ModelRunner(name, provider="cpu")
    assert card.name == runner.card.name == name
    frames, mask = parity_contexts(runner.card)  # real audio (the bundled example), start-up hops included
    with torch.no_grad():
        want = model(torch.from_numpy(frames), torch.from_numpy(mask))
    want = (want[0] if isinstance(want, tuple) else want).numpy()
    got = runner.run(frames, mask)["va"]
    assert np.max(np.abs(want - got)) <= 1e-4


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_states_cross_validated_metrics(name):
    card = ModelRunner(name, provider="cpu").card
    cv = card.metrics.get("4q_cv")
    assert cv and cv["folds"] >= 2 and cv["grouping"] == "artist"
    assert 0.25 <= cv["weighted_f1"] <= 1.0
    assert card.training.get("data") and card.training.get("command", "").startswith("emotrack train")
