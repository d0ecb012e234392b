"""The rater-agreement bench (``bench.accuracy.vgmidi_agreement``) on series whose agreement is known."""

from __future__ import annotations

import numpy as np

from bench.accuracy.vgmidi_agreement import agreement, main


def test_raters_who_hear_the_same_curve_agree_fully() -> None:
    curve = np.sin(np.linspace(0, 6, 80))
    raters = [curve + 0.01 * k for k in range(10)]  # offsets only: PCC ignores them, CCC does not
    out = agreement(raters, splits=5, rng=np.random.default_rng(0))
    assert out["half_vs_half_pcc"] > 0.999
    assert out["consensus_ceiling_pcc"] > 0.999
    assert out["one_vs_rest_pcc"] > 0.999


def test_raters_who_share_nothing_do_not_agree() -> None:
    rng = np.random.default_rng(1)
    raters = [rng.standard_normal(400) for _ in range(30)]
    out = agreement(raters, splits=20, rng=rng)
    assert abs(out["half_vs_half_pcc"]) < 0.15
    assert out["consensus_ceiling_pcc"] < 0.5  # 0 when the halves anti-correlate, small otherwise


def test_a_shared_curve_under_noise_lies_between() -> None:
    rng = np.random.default_rng(2)
    curve = np.sin(np.linspace(0, 20, 400))
    raters = [curve + 2.0 * rng.standard_normal(400) for _ in range(30)]
    out = agreement(raters, splits=20, rng=rng)
    assert 0.3 < out["half_vs_half_pcc"] < 0.9
    assert out["one_vs_rest_pcc"] < out["half_vs_half_pcc"] < out["consensus_ceiling_pcc"] < 1


def test_missing_data_root_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    assert main(["--data-root", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_real_panels_agree_partly(data_root) -> None:
    from emotrack.data.vgmidi import load_vgmidi

    clips = load_vgmidi(data_root, None, progress=False)[:12]
    rng = np.random.default_rng(0)
    rows = [agreement([s[1] for s in c.annotators], splits=4, rng=rng) for c in clips]
    half = np.mean([r["half_vs_half_pcc"] for r in rows])
    assert 0.0 < half < 0.9  # raters share some of the arousal curve, far from all of it
