"""The ensemble forecast (``bench.accuracy.ensemble_forecast``) against an ensemble that was really trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.accuracy.ensemble_forecast import fold_scores, load_clips

ACCURACY = Path(__file__).resolve().parents[1] / "bench" / "accuracy"
RUN = "mca-musicnn-default{}_4q_vgmidi_emopia_cv.json"


@pytest.mark.parametrize(("ensemble", "member_tags"), [("", ("-pcc", "-pcc-s1")), ("-0.5", ("-0.4", "-s1"))],
                         ids=["shipped 0.6.0", "previous 0.5.0"])
def test_two_members_give_the_ensembles_own_cv_scores(ensemble: str, member_tags: tuple[str, str]) -> None:
    members = [load_clips(ACCURACY / RUN.format(tag)) for tag in member_tags]
    scores = fold_scores(members)
    own = json.loads((ACCURACY / RUN.format(ensemble)).read_text())["datasets"]
    for dataset in ("4q", "emopia"):
        assert np.mean(scores[dataset]) == pytest.approx(own[dataset]["mean"]["weighted_f1"], abs=1e-9)
        per_fold = [f["weighted_f1"] for f in own[dataset]["per_fold"]]
        assert scores[dataset] == pytest.approx(per_fold, abs=1e-9)


def test_one_member_gives_its_own_scores_and_another_member_changes_them() -> None:
    alone = fold_scores([load_clips(ACCURACY / RUN.format("-0.4"))])
    own = json.loads((ACCURACY / RUN.format("-0.4")).read_text())["datasets"]
    assert np.mean(alone["4q"]) == pytest.approx(own["4q"]["mean"]["weighted_f1"], abs=1e-9)
    paired = fold_scores([load_clips(ACCURACY / RUN.format(t)) for t in ("-0.4", "-s1")])
    assert paired["4q"] != pytest.approx(alone["4q"])


def test_files_without_clips_or_with_other_folds_are_refused(tmp_path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(SystemExit, match="no per-clip results"):
        load_clips(empty)
    member = load_clips(ACCURACY / RUN.format("-0.4"))
    fewer = dict(list(member.items())[:-1])
    with pytest.raises(SystemExit, match="same clips and folds"):
        fold_scores([member, fewer])
