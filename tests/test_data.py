"""Tests for emotrack.data: label grid, loaders on the shared data sets, rendering, splits, cache index."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emotrack.audio import load_audio
from emotrack.data import (
    Clip,
    DataError,
    assert_group_disjoint,
    emopia_official_split,
    find_soundfont,
    grouped_kfold,
    holdout,
    load_4q,
    load_deam,
    load_emopia,
    load_index,
    load_pmemo,
    load_vgmidi,
    measures_to_hops,
    n_hops,
    prepare,
    quadrant_to_va,
    render_clips,
    strata,
    time_to_hop,
)
from emotrack.data.fourq import artist_groups

SR = 16000
DATA_ROOT = Path(__file__).parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def data_root() -> Path:
    if not DATA_ROOT.is_dir():
        pytest.skip("../shared/data not found: real-data tests need the shared data sets")
    return DATA_ROOT


@pytest.fixture(scope="module")
def soundfont() -> Path:
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth not installed")
    try:
        return find_soundfont()
    except DataError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def vgmidi(data_root: Path) -> list[Clip]:
    return load_vgmidi(data_root)


def _tone(seconds: float, sr: int = 22050) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


# --- label grid and records -----------------------------------------------------------------------------


def test_quadrant_to_va():
    assert [quadrant_to_va(q) for q in (1, 2, 3, 4)] == [(1, 1), (-1, 1), (-1, -1), (1, -1)]
    with pytest.raises(ValueError):
        quadrant_to_va(5)


def test_hop_grid():
    assert n_hops(63) == 126
    assert n_hops(17.99691) == 36  # partial last hop still needs a label
    assert n_hops(0.5000000001) == 1
    assert time_to_hop(15.0) == 29  # DEAM sample_15000ms: hop 29 covers 14.5-15 s


def test_measures_to_hops_labels_the_bar_heard_at_hop_end():
    # 1 s bars: hop ending at 1.0 s covers 0.5-1.0 s, all inside bar 0.
    out = measures_to_hops(np.array([1, 2, 3, 4, 9]), duration=4.0, n_measures=4)
    np.testing.assert_array_equal(out, [1, 1, 2, 2, 3, 3, 4, 4])
    # 0.3 s bars: the hop ending at 0.5 s ends inside bar 1.
    np.testing.assert_array_equal(measures_to_hops(np.array([0, 1, 2, 3]), duration=1.2), [1, 3, 3])


def test_clip_dict_roundtrip_keeps_nan():
    v = np.array([np.nan, 0.25, -0.5], np.float32)
    c = Clip(id="x/1", audio_path=Path("/a.wav"), group="g", dataset="x", valence=v, arousal=v,
             annotators=[(v, v)], meta={"k": 1})
    back = Clip.from_dict(c.to_dict())
    np.testing.assert_array_equal(back.valence, v)
    np.testing.assert_array_equal(back.annotators[0][1], v)
    assert back.audio_path == Path("/a.wav") and back.meta == {"k": 1} and back.quadrant is None


def test_artist_groups_merge_billing_variants_only():
    g = artist_groups(["Bob Marley", "Bob Marley & the Wailers", "Brooks & Dunn", " BILLIE  Holiday"])
    assert g["Bob Marley & the Wailers"] == g["Bob Marley"] == "artist/bob marley"
    assert g["Brooks & Dunn"] == "artist/brooks & dunn"
    assert g[" BILLIE  Holiday"] == "artist/billie holiday"


# --- splits -------------------------------------------------------------------------------------------


def _dynamic_clips(n_groups: int = 20, per_group: int = 3) -> list[Clip]:
    rng = np.random.default_rng(0)
    return [
        Clip(id=f"t/{g}_{i}", audio_path=None, group=f"g{g}", dataset="t",
             valence=rng.uniform(-1, 1, 10).astype(np.float32), arousal=np.full(10, g / n_groups, np.float32))
        for g in range(n_groups) for i in range(per_group)
    ]


def test_splits_keep_groups_together():
    clips = _dynamic_clips()
    assert set(strata(clips)) == {"a0", "a1", "a2", "a3"}
    folds = grouped_kfold(clips, k=5, seed=1)
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(len(clips)))
    train, val = holdout(clips, frac=0.2, seed=0)
    assert len(set(train) | set(val)) == len(clips) and not set(train) & set(val)
    assert_group_disjoint(clips, train, val)
    with pytest.raises(AssertionError):
        assert_group_disjoint(clips, np.array([0]), np.array([1]))
    with pytest.raises(ValueError):
        grouped_kfold(clips[:6], k=5)


# --- 4Q ---------------------------------------------------------------------------------------------------


@pytest.mark.data
def test_4q(data_root: Path):
    clips = load_4q(data_root / "4q")
    assert len(clips) == 720
    assert Counter(c.quadrant for c in clips) == {1: 180, 2: 180, 3: 180, 4: 180}
    assert all(c.audio_path.is_file() and c.audio_path.suffix == ".mp3" for c in clips)
    by_artist: dict[str, set[str]] = {}
    for c in clips:
        assert c.group.startswith("artist/") and c.group.removeprefix("artist/") in c.meta["artist"].casefold()
        by_artist.setdefault(c.meta["artist"].casefold().strip(), set()).add(c.group)
    assert all(len(g) == 1 for g in by_artist.values())  # one group per artist
    assert len({c.group for c in clips}) < len(clips)  # artists recur
    folds = grouped_kfold(clips, k=5, seed=0)
    for train, test in folds:
        assert not {clips[i].group for i in train} & {clips[i].group for i in test}
        assert Counter(clips[i].quadrant for i in test).most_common()[-1][1] >= 25  # stratified


# --- VGMIDI -------------------------------------------------------------------------------------------


@pytest.mark.data
def test_measures_to_hops_follows_given_bar_starts():
    # bars start at 0, 1 and 3 s: each hop takes the bar heard just before its end (0.5, 1.0, ... 3.5 s)
    out = measures_to_hops(np.array([1, 2, 3]), duration=3.5, starts=np.array([0.0, 1.0, 3.0]))
    np.testing.assert_array_equal(out, [1, 1, 2, 2, 2, 2, 3])
    with pytest.raises(ValueError, match="bar start"):
        measures_to_hops(np.array([1, 2, 3]), duration=3.5, starts=np.array([0.0, 1.0]))


def test_vgmidi_labels(vgmidi: list[Clip]):
    assert len(vgmidi) == 180
    sources = Counter(c.meta["bar_source"] for c in vgmidi)  # MIDI downbeats where their count matches
    assert sources["downbeats"] >= 90 and sources["constant"] >= 30
    assert len({c.group for c in vgmidi}) == 180
    assert {c.group.split("/")[0] for c in vgmidi} == {"vgmidi1", "vgmidi2"}
    for c in vgmidi:
        n = n_hops(c.meta["duration"])
        assert len(c.valence) == len(c.arousal) == n == int(np.ceil(c.meta["duration"] / 0.5 - 1e-6))
        assert len(c.annotators) >= 25
        assert all(len(v) == len(a) == n for v, a in c.annotators)
        for series in (c.valence, c.arousal, *(x for pair in c.annotators for x in pair)):
            assert np.isfinite(series).all() and series.min() >= -1 and series.max() <= 1
        np.testing.assert_allclose(c.valence, np.mean([v for v, _ in c.annotators], axis=0), atol=1e-6)
        assert Path(c.meta["midi_path"]).is_file()


@pytest.mark.data
def test_vgmidi_render_one_piece(vgmidi: list[Clip], soundfont: Path, tmp_path: Path):
    clip = min(vgmidi, key=lambda c: c.meta["duration"])
    [rendered] = render_clips([clip], tmp_path, soundfont, progress=False)
    assert rendered.audio_path.is_relative_to(tmp_path / "render" / "vgmidi")
    info = sf.info(rendered.audio_path)
    assert info.samplerate == SR and info.channels == 1
    audio = load_audio(rendered.audio_path, SR)
    duration = clip.meta["duration"]
    assert duration * SR <= len(audio) <= (duration + 4) * SR  # release tail of 2-3 s
    assert 0.01 < np.abs(audio).max() < 1.0
    mtime = rendered.audio_path.stat().st_mtime_ns
    render_clips([clip], tmp_path, soundfont, progress=False)  # cached: not rendered again
    assert rendered.audio_path.stat().st_mtime_ns == mtime


# --- EMOPIA -------------------------------------------------------------------------------------------


@pytest.mark.data
def test_emopia_official_split(data_root: Path):
    clips = load_emopia(data_root)
    assert len(clips) == 990 and {c.quadrant for c in clips} == {1, 2, 3, 4}
    train, val = emopia_official_split(clips)
    assert len(train) + len(val) == len(clips)
    assert not {clips[i].meta["song"] for i in train} & {clips[i].meta["song"] for i in val}
    assert all(Path(c.meta["midi_path"]).is_file() for c in clips)


# --- DEAM ---------------------------------------------------------------------------------------------


@pytest.mark.data
def test_deam_annotations_only(data_root: Path):
    clips = load_deam(data_root / "deam_annotations")
    assert len(clips) == 1802 and all(c.audio_path is None for c in clips)
    c = clips[0]
    assert c.id == "deam/2" and c.group == "deam/2"
    assert np.isnan(c.valence[:29]).all() and np.isfinite(c.valence[29:]).all()
    with open(data_root / "deam_annotations" / "dynamic_valence.csv", newline="") as f:
        rows = csv.reader(f)
        header, first = next(rows), next(rows)
    assert header[1] == "sample_15000ms" and c.valence[29] == pytest.approx(float(first[1]))
    assert c.meta["static"]["valence_mean"] == pytest.approx(3.1)
    for c in clips:
        assert len(c.valence) == len(c.arousal) and np.nanmax(np.abs(c.valence)) <= 1


@pytest.mark.data
def test_deam_with_audio_fixture(data_root: Path, tmp_path: Path):
    sf.write(tmp_path / "2.mp3", _tone(20.0), 22050, format="MP3")
    sf.write(tmp_path / "3.wav", _tone(1.0), 22050)
    clips = load_deam(data_root / "deam_annotations", tmp_path)
    assert [c.id for c in clips] == ["deam/2", "deam/3"]
    assert clips[0].audio_path == tmp_path / "2.mp3" and clips[1].audio_path.suffix == ".wav"
    assert abs(len(load_audio(clips[0].audio_path, SR)) - 20 * SR) < 0.1 * SR


# --- PMEmo --------------------------------------------------------------------------------------------


def test_pmemo_fixture(tmp_path: Path):
    root = tmp_path / "pmemo"
    (root / "annotations").mkdir(parents=True)
    (root / "chorus").mkdir()
    times = np.arange(15.5, 20.01, 0.5)
    with open(root / "annotations" / "dynamic_annotations.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["musicId", "frameTime", "Arousal(mean)", "Valence(mean)"])
        for mid in (1, 4):
            for i, t in enumerate(times):
                w.writerow([mid, t, 0.5 + 0.05 * i, 0.25])
    (root / "annotations" / "static_annotations.csv").write_text(
        "musicId,Arousal(mean),Valence(mean)\n1,0.75,0.5\n4,0.5,0.5\n")
    (root / "metadata.csv").write_text("musicId,fileName,title,artist\n1,1.mp3,A,The Band\n4,4.mp3,B,the  band\n")
    sf.write(root / "chorus" / "1.mp3", _tone(21.0), 22050, format="MP3")  # song 4 has no audio

    clips = load_pmemo(tmp_path)
    assert [c.id for c in clips] == ["pmemo/1"]
    c = clips[0]
    assert c.group == "artist/the band" and c.meta["static_va"] == (0.0, 0.5)
    assert len(c.valence) == time_to_hop(20.0) + 1 == 40
    assert np.isnan(c.arousal[:30]).all()
    np.testing.assert_allclose(c.arousal[30:], 2 * (0.5 + 0.05 * np.arange(len(times))) - 1, atol=1e-6)
    np.testing.assert_allclose(c.valence[30:], -0.5)


# --- preparation and index ----------------------------------------------------------------------------


@pytest.mark.data
def test_prepare_renders_once_and_indexes(data_root: Path, soundfont: Path, tmp_path: Path):
    summary = prepare(data_root, tmp_path, datasets=("4q", "emopia"), limit=1, progress=False)
    assert summary["4q"]["clips"] == 1 and summary["4q"]["rendered"] == 0
    assert summary["emopia"]["rendered"] == 1
    [clip] = load_index(tmp_path, "emopia")
    assert clip.audio_path.is_file() and clip.quadrant in (1, 2, 3, 4) and clip.meta["split"] in ("train", "val")
    assert load_index(tmp_path, "4q")[0].audio_path.is_file()
    again = prepare(data_root, tmp_path, datasets=("emopia",), limit=1, progress=False)
    assert again["emopia"]["rendered"] == 0 and again["emopia"]["cached"] == 1


def test_missing_soundfont_and_index_are_clear_errors(tmp_path: Path):
    with pytest.raises(DataError, match="soundfont not found"):
        find_soundfont(tmp_path / "none.sf2")
    with pytest.raises(DataError, match="no clip index"):
        load_index(tmp_path, "4q")
