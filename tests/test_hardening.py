"""Faults that must not end a stream or print a traceback: a model that outputs NaN, absurd sample values, a
folder shadowing a bundled model name, an unbounded smoothing window."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emotrack.csvout import read_csv
from emotrack.inference import resolve_model
from tests.conftest import REPO, assert_one_line_error


def _nan_model(tmp_path: Path) -> Path:
    """The bundled light model with its output multiplied by NaN (a broken graph a user might load)."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    proto = onnx.load(str(resolve_model("mca")))
    graph = proto.graph
    va = next(o for o in graph.output if o.name == "va")
    for node in graph.node:
        node.output[:] = ["va_before_nan" if name == "va" else name for name in node.output]
    graph.initializer.append(numpy_helper.from_array(np.array(np.nan, np.float32), "nan_constant"))
    graph.node.append(helper.make_node("Mul", ["va_before_nan", "nan_constant"], ["va"]))
    assert va.name == "va"
    path = tmp_path / "nan.onnx"
    onnx.save(proto, str(path))
    return path


def test_a_model_that_outputs_nan_is_counted_and_the_stream_goes_on(example_audio, tmp_path):
    csv = tmp_path / "run.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "emotrack", "run", "--file", str(example_audio), "--fast", "--quiet", "--no-osc",
         "--no-ws", "--model", str(_nan_model(tmp_path)), "--csv", str(csv)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "130 hops" in proc.stderr and "130 hops with a non-finite model output" in proc.stderr
    rows = read_csv(csv)
    assert len(rows["valence"]) == 130 and "nan" not in csv.read_text().lower()


def test_huge_samples_do_not_poison_the_model(tmp_path):
    """Float samples near 1e19 (issue 15) used to overflow the front end into NaN with dsaml."""
    rng = np.random.default_rng(0)
    path = tmp_path / "huge.wav"
    sf.write(path, (rng.standard_normal(16000 * 6) * 1e19).astype(np.float32), 16000, subtype="FLOAT")
    res = subprocess.run([sys.executable, "-m", "emotrack", "analyze", str(path), "--model", "dsaml", "-o",
                          str(tmp_path), "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    d = read_csv(tmp_path / "huge.csv")
    assert len(d["valence"]) == 12 and all(np.isfinite(d["valence"])) and all(np.isfinite(d["arousal"]))
    assert all(a == 1 for a in d["active"])  # real model outputs, not hops held for a NaN



def test_a_folder_named_like_a_bundled_model_does_not_shadow_it(tmp_path, example_audio):
    (tmp_path / "mca").mkdir()
    res = subprocess.run([sys.executable, "-m", "emotrack", "analyze", str(example_audio), "--model", "mca", "-o",
                          str(tmp_path / "out"), "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / f"{example_audio.stem}.csv").exists()
    res = subprocess.run([sys.executable, "-m", "emotrack", "analyze", str(example_audio), "--model", "./mca", "-o",
                          str(tmp_path / "out")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert_one_line_error(res, "is a folder, not an .onnx model file")


def test_triangle_taps_are_bounded(cli, example_audio):
    res = cli("run", "--file", str(example_audio), "--fast", "--quiet", "--no-osc", "--no-ws",
              "--smoothing", "triangle", "--smoothing-param", "taps=1e9")
    assert_one_line_error(res, "taps must be at most 1200")


@pytest.mark.parametrize(("toml", "fragment"), [
    ("[run]\nosc = 9000\n", "osc must be list of strings or str, got int 9000"),
    ("[run]\nosc_prefix = 7\n", "osc_prefix must be str, got int 7"),
    ("[run]\nfile = 5\n", "file must be str, got int 5"),
    ('[run]\nsmoothing_params = "fast"\n', "smoothing_params must be table, got str"),
    ("run = 5\n", "[run] must be a table of options, got int 5"),
    ("[run]\nfast = 1\n", "fast must be bool, got int 1"),
    ("[run]\nws_port = 70000\n", "--ws-port must be 0 (any free port) to 65535, got 70000"),
])
def test_config_values_of_the_wrong_type_or_range(cli, tmp_path, toml, fragment):
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    assert_one_line_error(cli("run", "--config", str(config), "--quiet"), fragment)


def test_config_naming_a_folder(cli, tmp_path):
    assert_one_line_error(cli("run", "--config", str(tmp_path)), "is a folder; give a .toml file")


@pytest.mark.parametrize(("flags", "fragment"), [
    (["--ws-port", "70000"], "--ws-port must be 0 (any free port) to 65535, got 70000"),
    (["--ws-port", "-1"], "--ws-port must be 0 (any free port) to 65535, got -1"),
    (["--threads", "5000"], "--threads must be 1 to"),
    (["--threads", "0"], "--threads must be 1 to"),
])
def test_run_options_out_of_range(cli, example_audio, flags, fragment):
    res = cli("run", "--file", str(example_audio), "--fast", "--quiet", "--no-osc", *flags)
    assert_one_line_error(res, fragment)


def test_output_locations_are_checked_before_the_model_loads(cli, example_audio, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for out, fragment in ((a_file, "is a file, not a folder"), (a_file / "sub", "is a file, not a folder")):
        assert_one_line_error(cli("analyze", str(example_audio), "-o", str(out), "--quiet"), fragment)
    for csv, fragment in ((tmp_path / "missing" / "run.csv", "does not exist"), (tmp_path, "is a folder"),
                          (a_file / "run.csv", "is a file")):
        res = cli("run", "--file", str(example_audio), "--fast", "--quiet", "--no-osc", "--no-ws", "--csv", str(csv))
        assert_one_line_error(res, fragment)
    assert a_file.read_text() == "x"  # nothing was overwritten


def _with_metadata(tmp_path: Path, change) -> Path:
    """The bundled light model with one metadata property rewritten by ``change(key, value) -> value``."""
    import json

    onnx = pytest.importorskip("onnx")
    proto = onnx.load(str(resolve_model("mca")))
    for prop in proto.metadata_props:
        prop.value = json.dumps(change(prop.key.removeprefix("emotrack."), json.loads(prop.value)))
    path = tmp_path / "bad.onnx"
    onnx.save(proto, str(path))
    return path


def _frontend_param(name, value):
    return lambda key, v: {**v, "params": {**v["params"], name: value}} if key == "frontend" else v


@pytest.mark.parametrize(("change", "fragment"), [
    (_frontend_param("sample_rate", 0), "frontend sample_rate must be a positive number, not 0"),
    (_frontend_param("n_fft", -5), "frontend n_fft must be a positive number, not -5"),
    (lambda k, v: {**v, "std": [0.0] * len(v["std"])} if k == "normalization" else v, "std must be positive"),
    (lambda k, v: {**v, "std": v["std"][:3]} if k == "normalization" else v, "differ in length"),
    (lambda k, v: {**v, "mean": v["mean"][:3], "std": v["std"][:3]} if k == "normalization" else v,
     "normalization mean has 3 values"),
    (lambda k, v: "va" if k == "outputs" else v, "outputs must be an object"),
    (lambda k, v: {**v, "frames": 100_000_000} if k == "context" else v, "context must hold 1 to 1200 frames"),
])
def test_absurd_model_metadata_is_one_line_error(cli, example_audio, tmp_path, change, fragment):
    model = _with_metadata(tmp_path, change)
    res = cli("analyze", str(example_audio), "--model", str(model), "-o", str(tmp_path / "out"), "--quiet")
    assert_one_line_error(res, fragment)
