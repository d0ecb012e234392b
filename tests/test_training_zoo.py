"""Every zoo model trains through the shared trainer on a tiny real 4Q subset (8 clips, 1-2 epochs).

Why: the trainer was written for MCA; the zoo adds a raw-waveform front end (SincNet) and auxiliary
losses (SincNet's quadrant head, DSAML's diagonal attention loss). This checks, quickly, that each
model gets the front end its class declares, that its auxiliary term is present and finite, and that
a short run produces a finite loss and finite streamed predictions. Skipped if ``../shared/data`` is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from emotrack.export.metadata import ModelCard  # noqa: E402
from emotrack.models import build_model  # noqa: E402
from emotrack.models.registry import MODELS  # noqa: E402
from emotrack.training.objectives import (  # noqa: E402
    apply_gain,
    auxiliary_loss,
    model_frontend,
    quadrant_ids,
)
from emotrack.training.trainer import TrainConfig, predict_clip, train  # noqa: E402

ZOO = ("mca", "damff", "adff", "dsaml", "sincnet")


def test_quadrant_ids_and_gain():
    signs = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [float("nan"), float("nan")]])
    assert quadrant_ids(signs).tolist() == [0, 1, 2, 3, -1]
    x = torch.ones(3)
    assert torch.allclose(apply_gain(x, 0.5, "logmel"), x + 0.5)
    assert torch.allclose(apply_gain(x, 2.0, "wave"), x * np.e)  # power gain 2 -> amplitude e
    assert model_frontend("sincnet") == "wave" and model_frontend("mca") == "logmel"


def test_auxiliary_terms_present_only_where_expected():
    torch.manual_seed(0)
    signs = torch.tensor([[1.0, -1.0]])
    for name in ZOO:
        model = build_model(name)
        frames = torch.randn(1, 20, *((8000,) if model.frontend == "wave" else (25, 64)))
        out = model.outputs(frames, torch.ones(1, 20))
        aux = auxiliary_loss(out, signs)
        if name in ("sincnet", "dsaml"):
            assert aux is not None and torch.isfinite(aux) and aux > 0, name
            aux.backward()  # differentiable through the model
        else:
            assert aux is None, name


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_4q_clips):
    from emotrack.training.examples import load_examples

    clips = tiny_4q_clips
    root = tmp_path_factory.mktemp("features")
    return {fe: load_examples(clips, root, workers=2, progress=False, frontend=fe) for fe in ("logmel", "wave")}


@pytest.mark.parametrize("name", ZOO)
def test_zoo_model_trains_on_tiny_4q(tiny, name):
    frontend = MODELS[name].frontend
    examples, cache = tiny[frontend]
    assert examples[0].frames.shape[1:] == cache.frame_shape
    cfg = TrainConfig(model=name, epochs=2, batch_clips=4, hops_per_clip=4, patience=5, seed=0, freq_mask=12, ema=0.9)
    card = ModelCard(name=name, version="0.0.0", frontend={"name": frontend, "params": cache.frontend_params})
    res = train(examples[:6], examples[6:], cfg, card, progress=False)
    losses = [h["loss"] for h in res.history]
    assert len(losses) >= 1 and np.all(np.isfinite(losses)), losses
    for key, buf in res.model.state_dict().items():  # EMA copy must carry the live BatchNorm statistics
        if key.endswith("running_var"):
            assert not torch.allclose(buf, torch.ones_like(buf)), key
    from emotrack.frontends import Normalizer

    pred = predict_clip(res.model, Normalizer.from_dict(res.card.normalization)(examples[6].frames), stride=4)
    assert pred.shape[1] == 2 and np.all(np.isfinite(pred)) and np.all(np.abs(pred) <= 1)
