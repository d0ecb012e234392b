"""Behaviour of the causal smoothers: causality, range, step response, the triangle's weights."""

import math

import numpy as np
import pytest

from emotrack.errors import ConfigError
from emotrack.realtime.smoothing import SMOOTHERS, AttackRelease, OneEuro, Triangle, make_smoother, parse_param


def run(smoother, values, arousal=None):
    """Feed a valence sequence (and optionally an arousal one) and return the outputs as an (n, 2) array."""
    arousal = -np.asarray(values) if arousal is None else arousal
    return np.array([smoother.process(v, a) for v, a in zip(values, arousal, strict=True)])


def rise_hops(outputs, start, target):
    """Hops after ``start`` until the output first reaches 90 % of the way to ``target``."""
    y0 = outputs[start - 1]
    reached = np.abs(outputs[start:] - y0) >= 0.9 * abs(target - y0)
    assert reached.any(), "never reached 90 %"
    return int(np.argmax(reached))


@pytest.mark.parametrize("name", list(SMOOTHERS))
def test_causal(name):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 40)
    k = 20
    changed = x.copy()
    changed[k + 1 :] = rng.uniform(-1, 1, len(x) - k - 1)
    a, b = run(make_smoother(name), x), run(make_smoother(name), changed)
    np.testing.assert_array_equal(a[: k + 1], b[: k + 1])
    assert not np.array_equal(a[k + 1 :], b[k + 1 :])


@pytest.mark.parametrize("name", list(SMOOTHERS))
def test_range_start_and_reset(name):
    rng = np.random.default_rng(2)
    x = rng.uniform(-3, 3, 60)  # model outputs can overshoot; smoothers clip
    s = make_smoother(name)
    first = run(s, x)
    assert np.all(np.abs(first) <= 1.0)
    assert first[0].tolist() == [np.clip(x[0], -1, 1), np.clip(-x[0], -1, 1)]  # no ramp from zero
    s.reset()
    np.testing.assert_array_equal(run(s, x), first)


@pytest.mark.parametrize("name", list(SMOOTHERS))
def test_dimensions_are_independent(name):
    rng = np.random.default_rng(3)
    v, a = rng.uniform(-1, 1, 30), rng.uniform(-1, 1, 30)
    together = run(make_smoother(name), v, a)
    np.testing.assert_array_equal(together[:, 0], run(make_smoother(name), v, v)[:, 0])
    np.testing.assert_array_equal(together[:, 1], run(make_smoother(name), a, a)[:, 1])


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_input_raises(bad):
    with pytest.raises(ValueError, match="finite"):
        make_smoother("ema").process(0.0, bad)


def test_ema_attack_faster_than_release():
    up = run(AttackRelease(), np.r_[np.full(5, -0.5), np.full(20, 0.5)])[:, 0]
    down = run(AttackRelease(), np.r_[np.full(5, 0.5), np.full(20, -0.5)])[:, 0]
    assert up[5] == pytest.approx(-0.5 + (1 - math.exp(-0.5 / 1.0)))  # attack 1 s, hop 0.5 s
    assert down[5] == pytest.approx(0.5 - (1 - math.exp(-0.5 / 2.0)))  # release 2 s
    assert rise_hops(up, 5, 0.5) < rise_hops(down, 5, -0.5)


def test_ema_zero_time_constant_follows_instantly():
    y = run(AttackRelease(attack=0, release=3.0), [0.0, 0.8, 0.2])[:, 0]
    assert y[1] == 0.8 and 0.2 < y[2] < 0.8


def test_triangle_weights_and_start():
    t = Triangle()
    assert t.weights == tuple(float(13 - j) for j in range(13))
    # Stream start: the weights of the inputs seen so far are renormalised.
    assert run(t, [1.0, 0.0])[:, 0].tolist() == pytest.approx([1.0, 12 / 25])
    # With a full history, an impulse comes out as the weights themselves over their sum (91).
    t.reset()
    y = run(t, np.r_[np.zeros(13), 1.0, np.zeros(14)])[:, 0]
    np.testing.assert_allclose(y[13:26], np.arange(13, 0, -1) / 91)
    assert np.all(y[:13] == 0) and np.all(y[26:] == 0)


def test_one_euro_smooths_jitter_but_follows_steps():
    rng = np.random.default_rng(4)
    noisy = 0.2 + 0.015 * rng.standard_normal(400)  # the default model's hop-to-hop jitter is ~0.01 (response.md)
    out = run(OneEuro(), noisy)[20:, 0]
    assert out.std() < 0.5 * noisy[20:].std()
    assert abs(out.mean() - 0.2) < 0.01

    step = np.r_[np.zeros(20), np.full(20, 0.5)]
    adaptive = rise_hops(run(OneEuro(), step)[:, 0], 20, 0.5)
    fixed = rise_hops(run(OneEuro(beta=0), step)[:, 0], 20, 0.5)  # plain low-pass at min_cutoff
    assert adaptive <= 3 < 6 <= fixed


def test_factory_and_describe():
    assert make_smoother("none").describe() == "none"
    assert make_smoother("ema", attack="0.5").describe() == "ema(attack=0.5s, release=2s)"
    assert make_smoother("one-euro").describe() == "one-euro(min_cutoff=0.05Hz, beta=2, d_cutoff=1Hz)"
    assert make_smoother("triangle", taps=5).describe() == "triangle(taps=5)"


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("median", {}, "unknown smoothing 'median' (choose from none, ema, one-euro, triangle)"),
        ("ema", {"tau": 1}, "smoothing 'ema' takes attack, release, hop_s; got tau"),
        ("none", {"x": 1}, "smoothing 'none' takes no parameters; got x"),
        ("ema", {"attack": -1}, "smoothing parameter attack must be >= 0, got -1"),
        ("one-euro", {"min_cutoff": 0}, "smoothing parameter min_cutoff must be > 0, got 0"),
        ("one-euro", {"beta": "fast"}, "smoothing parameter beta must be a number, got 'fast'"),
        ("triangle", {"taps": 2.5}, "smoothing parameter taps must be a whole number, got 2.5"),
    ],
)
def test_factory_errors(name, params, message):
    with pytest.raises(ConfigError) as info:
        make_smoother(name, **params)
    assert str(info.value) == message


def test_parse_param_reads_key_value_and_refuses_the_rest():
    """``--smoothing-param`` and the response bench's specs share one parser: dashes become underscores."""
    assert parse_param("min-cutoff=0.05") == ("min_cutoff", 0.05)
    assert make_smoother("one-euro", **dict([parse_param("beta=3")])).beta == 3.0
    for bad, fragment in (("beta", "KEY=VALUE"), ("beta=fast", "not a number")):
        with pytest.raises(ConfigError, match=fragment):
            parse_param(bad)
