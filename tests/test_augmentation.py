"""Pitch-shifted training copies (``TrainConfig.pitch_shifts``): cached like frames, drawn in place of the clip.

Why: the copies are training data that keep the clip's labels, so they must line up hop for hop with the clip,
belong to recorded audio only (rendered MIDI is left alone), never reach validation or tests (they live on the
example, not in the clip list the splits see), and cost the recipes without them nothing, not even a random
draw: an old run's command must still reproduce its numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("torch")
pytest.importorskip("librosa")

from emotrack.audio import load_audio  # noqa: E402
from emotrack.cli import main  # noqa: E402
from emotrack.data.clips import Clip  # noqa: E402
from emotrack.training.examples import load_examples  # noqa: E402
from emotrack.training.features import FeatureCache  # noqa: E402
from emotrack.training.trainer import Example  # noqa: E402


@pytest.fixture(scope="module")
def excerpts(example_audio, tmp_path_factory):
    """Two 8 s excerpts of the bundled recording as files of their own (one stands in for rendered MIDI)."""
    folder = tmp_path_factory.mktemp("excerpts")
    x = load_audio(example_audio, 16000)
    paths = []
    for i, start in enumerate((20, 40)):
        path = folder / f"clip{i}.wav"
        sf.write(path, x[start * 16000:(start + 8) * 16000], 16000)
        paths.append(path)
    return paths


def test_a_shifted_copy_is_cached_beside_the_clip_with_its_hops(excerpts, tmp_path):
    cache = FeatureCache(tmp_path, "logmel")
    assert cache.build(excerpts[:1], workers=1, progress=False) == 1
    assert cache.build(excerpts[:1], workers=1, progress=False, shift=2) == 1
    assert cache.build(excerpts[:1], workers=1, progress=False, shift=2) == 0  # cached: not computed again
    assert cache.path(excerpts[0], 2).name == cache.path(excerpts[0]).stem + "-p+2.npy"
    original, shifted = cache.load(excerpts[0]), cache.load(excerpts[0], 2)
    assert shifted.shape == original.shape
    assert np.isfinite(shifted).all()
    assert not np.allclose(shifted, original)
    # Two semitones up moves the spectrum up: the log-mel energy's centre of mass rises.
    bands = np.arange(original.shape[-1])

    def centre(frames):
        power = np.exp(frames.reshape(-1, frames.shape[-1]))
        return float((power * bands).sum() / power.sum())

    assert centre(shifted) > centre(original)


def test_recorded_clips_get_their_copies_and_rendered_midi_none(excerpts, tmp_path):
    clips = [Clip(id="4q/a", audio_path=excerpts[0], group="artist/a", dataset="4q", quadrant=1),
             Clip(id="emopia/b", audio_path=excerpts[1], group="song/b", dataset="emopia", quadrant=3)]
    examples, cache = load_examples(clips, tmp_path, workers=1, progress=False, frontend="logmel",
                                    pitch_shifts=(-1, 1))
    recorded, midi = examples
    assert len(recorded.variants) == 2 and midi.variants == ()
    assert np.array_equal(recorded.variants[1], cache.load(excerpts[0], 1))
    assert not cache.path(excerpts[1], 1).exists()  # nothing computed for MIDI
    plain, _ = load_examples(clips, tmp_path, workers=1, progress=False, frontend="logmel")
    assert all(e.variants == () for e in plain)


def test_a_draw_covers_every_version_and_costs_nothing_without_copies():
    frames = np.zeros((6, 3), np.float32)
    copies = (np.ones_like(frames), np.full_like(frames, 2.0))
    rng = np.random.default_rng(0)
    seen = {float(Example("a", "g", frames, 1, variants=copies).draw(rng)[0, 0]) for _ in range(60)}
    assert seen == {0.0, 1.0, 2.0}
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert Example("a", "g", frames, 1).draw(rng) is frames
    assert rng.bit_generator.state == state  # a recipe without copies draws the same random stream as before


@pytest.mark.parametrize("shifts", ["[0]", "[1, 1]", "[13]", '"1"', "[1.5]"])
def test_bad_pitch_shifts_are_a_one_line_error(shifts, tmp_path, capsys):
    code = main(["train", "mca", "--data-root", str(tmp_path), "--out", str(tmp_path / "run"),
                 "--hparams", f'{{"pitch_shifts": {shifts}}}'])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("emotrack: error: pitch_shifts must be") and err.count("\n") == 1, err
