"""``emotrack train`` / ``evaluate`` on VGMIDI, EMOPIA and 4Q together, on tiny real subsets.

Why: multi-task training mixes sign targets (4Q/EMOPIA quadrants) with continuous VGMIDI V/A, and the
splits differ per data set (artist / piece k-fold, EMOPIA's official song split). These tests check, on
the real data, that the splits never share a group, that EMOPIA val songs never reach training, that
``--limit`` is per data set and balanced, and that the CLI writes finite papers' metrics per data set.
MIDI is rendered into a temporary cache (a few pieces, seconds). Skipped if ``../shared/data`` is absent.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from emotrack.cli import build_parser, main  # noqa: E402
from emotrack.training import commands as C  # noqa: E402
from emotrack.training import examples as E  # noqa: E402
from emotrack.training import folds as F  # noqa: E402

SMALL = '{"model_kwargs": {"d": 16, "hidden": 16}, "hops_per_clip": 4}'


@pytest.fixture(scope="module")
def all_clips(data_root):
    """Every clip of the three data sets, unrendered (labels, groups, EMOPIA split)."""
    from emotrack.data.cache import load_dataset

    for name, marker in (("4q", "4q/panda_dataset_taffc_metadata.csv"), ("vgmidi", "vgmidi/vgmidi_raw_1.json"),
                         ("emopia", "emopia/label.csv")):
        if not (data_root / marker).exists():
            pytest.skip(f"{name} not found under {data_root}")
    return {name: load_dataset(name, data_root) for name in E.TRAINABLE}


def _groups(clips, ids):
    by_id = {c.id: c for c in clips}
    return {by_id[i].group for i in ids}


# -- limit and splits (no training) ----------------------------------------------------------------


def test_limit_is_per_dataset_and_balanced(all_clips):
    q4 = E.limit_clips(all_clips["4q"], 8, seed=0)
    assert sorted(Counter(c.quadrant for c in q4).values()) == [2, 2, 2, 2]
    em = E.limit_clips(all_clips["emopia"], 8, seed=0)
    assert Counter(c.meta["split"] for c in em) == {"train": 4, "val": 4}
    assert sorted(Counter(c.quadrant for c in em).values()) == [2, 2, 2, 2]
    assert {c.meta["split"] for c in E.limit_clips(all_clips["emopia"], 2, seed=0)} == {"train", "val"}
    vg = E.limit_clips(all_clips["vgmidi"], 4, seed=0)
    arousal = sorted(float(np.nanmean(c.arousal)) for c in vg)
    assert len(vg) == 4 and arousal[0] < arousal[-1]  # one piece per arousal quartile, not four alike
    assert E.limit_clips(all_clips["vgmidi"], 4, seed=0) == vg  # seeded
    # per data set: 8 of each, whatever the others hold
    mixed = [c for name in ("4q", "emopia") for c in E.limit_clips(all_clips[name], 8, seed=0)]
    assert Counter(c.dataset for c in mixed) == {"4q": 8, "emopia": 8}


def test_cv_splits_group_disjoint_emopia_val_never_trained(all_clips):
    from emotrack.data.splits import grouped_kfold

    clips = [c for name in E.TRAINABLE for c in all_clips[name]]
    plan = F.cv_splits(clips, 5, seed=0)
    emopia_val = {i for i, c in enumerate(clips) if c.dataset == "emopia" and c.meta["split"] == "val"}
    emopia_train = {i for i, c in enumerate(clips) if c.dataset == "emopia" and c.meta["split"] == "train"}
    kfold = {i for i, c in enumerate(clips) if c.dataset in ("4q", "vgmidi")}
    tested = Counter()
    for fold in plan:
        parts = {k: set(v.tolist()) for k, v in fold.items()}
        groups = {k: {clips[i].group for i in v} for k, v in parts.items()}
        assert not groups["train"] & groups["test"] and not groups["val"] & groups["test"]
        assert not groups["train"] & groups["val"]
        assert emopia_val <= parts["test"] and not emopia_val & (parts["train"] | parts["val"])
        assert emopia_train <= parts["train"] | parts["val"]
        assert len(parts["val"]) < len(parts["train"]) / 3  # ~1/7 held out for early stopping
        tested.update(parts["test"] & kfold)
    assert set(tested) == kfold and set(tested.values()) == {1}  # every 4Q/VGMIDI clip tested exactly once
    final = F.final_split(clips, seed=0)
    assert set(final["excluded"].tolist()) == emopia_val
    assert not emopia_val & set(np.concatenate([final["train"], final["val"]]).tolist())
    # EMOPIA alone: one "fold", the official split
    em = all_clips["emopia"]
    (only,) = F.cv_splits(em, 5, seed=0)
    assert {em[i].meta["split"] for i in only["test"]} == {"val"}
    assert {em[i].meta["split"] for i in np.concatenate([only["train"], only["val"]])} == {"train"}
    # 4Q alone keeps the folds of earlier runs (bench/accuracy/*_4q_cv.json)
    q4 = all_clips["4q"]
    for fold, (_, test) in zip(F.cv_splits(q4, 5, seed=0), grouped_kfold(q4, 5, seed=0), strict=True):
        assert np.array_equal(fold["test"], test)


def test_bad_data_options_are_one_line_errors(data_root, tmp_path, capsys):
    cases = [
        (["--datasets", "4q", "nope"], "unknown data set 'nope'"),
        (["--data-root", str(tmp_path / "missing")], "data root not found"),
        (["--data-root", str(tmp_path), "--datasets", "vgmidi"], "vgmidi data set not found"),
        (["--hparams", "{bad"], "not valid json"),
        (["--frontend", "wave"], "mca cannot read 'wave' frames"),
    ]
    for extra, message in cases:
        code = main(["train", "mca", "--data-root", str(data_root), "--out", str(tmp_path / "run"), "-q", *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert code != 0 and len(err) == 1 and err[0].startswith("emotrack: error:"), err
        assert message in err[0].lower(), err


def test_parser_is_the_single_source_of_defaults():
    args = build_parser().parse_args(["train", "mca"])
    assert (args.datasets, args.folds, args.device, args.render_cache) == (["4q"], 5, "auto", None)
    assert not hasattr(C, "TRAIN_DEFAULTS") and not hasattr(C, "EVAL_DEFAULTS")
    assert build_parser().parse_args(["evaluate", "mca"]).emopia_split == "val"


# -- the real CLI, end to end -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    root = tmp_path_factory.mktemp("caches")
    return ["--cache", str(root / "features"), "--render-cache", str(root / "render")]


def _finite_regression(reg):
    for scope in ("per_song", "global"):
        for dim in ("valence", "arousal"):
            assert -1.0 <= reg[scope][f"{dim}_ccc"] <= 1.0 and -1.0 <= reg[scope][f"{dim}_pcc"] <= 1.0
            assert 0.0 <= reg[scope][f"{dim}_rmse"] <= 2.0


def _valid_quadrant(q, n):
    assert 0.0 <= q["weighted_f1"] <= 1.0 and 0.0 <= q["accuracy"] <= 1.0
    assert 0.0 <= q["valence_sign_accuracy"] <= 1.0 and 0.0 <= q["arousal_sign_accuracy"] <= 1.0
    assert np.array(q["confusion_matrix"]).shape == (4, 4) and np.sum(q["confusion_matrix"]) == n


def _evaluate(capsys, checkpoint, *args):
    """``emotrack evaluate`` through the CLI entry point, in this process (saves a torch import per call)."""
    capsys.readouterr()
    code = main(["evaluate", str(checkpoint), "-q", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    return json.loads(captured.out)


def _check_splits_file(path, clips_by_id):
    doc = json.loads(path.read_text())
    for part in [*doc.get("folds", []), doc["final"]]:
        groups = {k: {clips_by_id[i].group for i in ids} for k, ids in part.items()}
        names = list(groups)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                assert not groups[a] & groups[b], (a, b)
        trained = [clips_by_id[i] for i in part["train"] + part["val"]]
        assert not [c.id for c in trained if c.dataset == "emopia" and c.meta["split"] != "train"]
    return doc


def test_train_and_evaluate_vgmidi(cli, capsys, data_root, all_clips, caches, tmp_path):
    """VGMIDI with the tonal front end (the VGMIDI valence result): CV, final model, card, evaluate."""
    out = tmp_path / "run"
    res = cli("train", "mca", "--data-root", str(data_root), "--datasets", "vgmidi", "--limit", "4", "--folds", "2",
              "--epochs", "1", "--hparams", SMALL, "--frontend", "logmel_tonal", "--out", str(out), "--device", "cpu",
              "-q", *caches, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads(res.stdout)
    assert summary["n_clips_by_dataset"] == {"vgmidi": 4}
    cv = json.loads((out / "mca_vgmidi_cv.json").read_text())
    vg = cv["datasets"]["vgmidi"]
    assert vg["kind"] == "regression" and vg["pooled"]["per_song"]["n_songs"] == 4
    _finite_regression(vg["pooled"])
    assert [f["n_test"] for f in vg["per_fold"]] == [2, 2]
    assert "mean" not in cv  # the top-level (4Q) keys only come with 4Q
    _check_splits_file(out / "splits.json", {c.id: c for c in all_clips["vgmidi"]})

    from emotrack.training.checkpoint import load_checkpoint

    _, card, _ = load_checkpoint(out / "final_best.pt")
    assert "VGMIDI" in card.description and "4Q" not in card.description
    assert card.frontend["name"] == "logmel_tonal" and "chroma" in card.description
    assert "vgmidi" in card.training["targets"] and "quadrant" not in card.training["targets"]
    assert set(card.metrics) == {"vgmidi_cv"} and -1 <= card.metrics["vgmidi_cv"]["per_piece"]["arousal_ccc"] <= 1

    report = _evaluate(capsys, out / "final_best.pt", "--data-root", str(data_root), "--datasets", "vgmidi",
                       "--limit", "4", *caches)
    assert report["n_clips"] == 4 and report["datasets"]["vgmidi"]["n_clips"] == 4
    _finite_regression(report["regression"])


def test_train_multitask_4q_vgmidi_emopia_and_evaluate(cli, capsys, data_root, all_clips, caches, tmp_path):
    out = tmp_path / "run"
    # --limit 4: the VGMIDI pieces of the test above (renders and features reused), 2 EMOPIA train + 2 val clips
    res = cli("train", "mca", "--data-root", str(data_root), "--datasets", "4q", "vgmidi", "emopia", "--limit", "4",
              "--folds", "2", "--epochs", "1", "--hparams", SMALL, "--out", str(out), "-q", *caches, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads(res.stdout)
    assert summary["n_clips_by_dataset"] == {"4q": 4, "vgmidi": 4, "emopia": 4}
    cv = json.loads((out / "mca_4q_vgmidi_emopia_cv.json").read_text())
    assert set(cv["datasets"]) == {"4q", "vgmidi", "emopia"}
    _valid_quadrant(cv["pooled"], 4)  # 4Q at the top level, as bench/accuracy/report.py reads it
    assert cv["mean"] == cv["datasets"]["4q"]["mean"] and "weighted_f1" in cv["per_fold"][0]
    _finite_regression(cv["datasets"]["vgmidi"]["pooled"])
    em = cv["datasets"]["emopia"]
    assert [f["n_test"] for f in em["per_fold"]] == [2, 2]  # every fold model is tested on the 2 val clips
    _valid_quadrant(em["pooled"], 4)
    for fold in cv["per_fold"]:
        assert fold["n_test_by_dataset"]["emopia"] == 2 and fold["n_train_by_dataset"]["emopia"] <= 2
    by_id = {c.id: c for name in E.TRAINABLE for c in all_clips[name]}
    doc = _check_splits_file(out / "splits.json", by_id)
    assert {by_id[i].meta["split"] for i in doc["final"]["excluded"]} == {"val"}
    assert (out / "mca_4q_vgmidi_emopia_cv.md").read_text().count("## ") == 3

    from emotrack.training.checkpoint import load_checkpoint

    _, card, _ = load_checkpoint(out / "final_best.pt")
    assert all(name in card.description for name in ("4Q", "EMOPIA", "VGMIDI"))
    assert all(name in card.training["data"] for name in ("4Q", "EMOPIA", "VGMIDI"))
    assert "val" in card.training["excluded"]
    assert set(card.metrics) == {"4q_cv", "vgmidi_cv", "emopia_val"}

    report = _evaluate(capsys, out / "final_best.pt", "--data-root", str(data_root), "--datasets", "4q", "emopia",
                       "--limit", "2", *caches)
    assert "quadrant" not in report  # several data sets: metrics only per data set, never pooled across them
    assert report["datasets"]["emopia"]["split"] == "val"
    emopia_ids = {c["id"] for c in report["datasets"]["emopia"]["clips"]}
    assert {by_id[i].meta["split"] for i in emopia_ids} == {"val"}
    for name in ("4q", "emopia"):
        _valid_quadrant(report["datasets"][name]["quadrant"], 2)


def test_architecture_text_names_the_frontend_layer():
    """The card says how wide each hop's frame is: musicnn's default layer, or the one the run chose."""
    from emotrack.frontends.musicnn import WIDTHS
    from emotrack.training.card_text import architecture_text

    default = architecture_text("mca", {"frontend": "musicnn_tonal"})
    pooled = architecture_text("mca", {"frontend": "musicnn_tonal"}, {"layer": "pooled"})
    assert f"2 x {WIDTHS['penultimate']} values)" in default and "layer" not in default.split("->")[0]
    assert f"2 x {WIDTHS['pooled']} values of its pooled layer" in pooled


def test_load_clips_refuses_an_unknown_emopia_split(tmp_path):
    from emotrack.data.clips import DataError

    with pytest.raises(DataError, match="unknown EMOPIA split 'test'"):
        E.load_clips(tmp_path, ["emopia"], tmp_path, emopia_split="test")
