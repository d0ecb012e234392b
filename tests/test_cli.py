"""The command line as a user meets it: real audio, real files, real ports, real error messages."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import soundfile as sf

from emotrack.csvout import read_csv
from tests.conftest import assert_one_line_error


def test_analyze_matches_run_file_fast(cli, example_audio, tmp_path):
    """One code path: analyze and `run --file --fast` give the same raw values (to 1e-5)."""
    ana = cli("analyze", str(example_audio), "--out", str(tmp_path / "ana"), "-q")
    assert ana.returncode == 0, ana.stderr
    run = cli("run", "--file", str(example_audio), "--fast", "--quiet", "--no-osc", "--no-ws",
              "--csv", str(tmp_path / "run.csv"))
    assert run.returncode == 0, run.stderr
    a = read_csv(tmp_path / "ana" / "example.csv")
    b = read_csv(tmp_path / "run.csv")
    duration = sf.info(str(example_audio)).duration
    assert len(a["time_s"]) == int(duration / 0.5)
    assert a["time_s"][:3] == [0.5, 1.0, 1.5]
    assert a["time_s"] == b["time_s"]
    for key in ("valence", "arousal"):
        assert np.max(np.abs(np.array(a[key]) - np.array(b[key]))) <= 1e-5
        assert min(a[key]) >= -1 and max(a[key]) <= 1


def test_analyze_jobs_spread_files_without_changing_numbers(cli, example_audio, tmp_path):
    """`--jobs 2` runs two worker processes; every CSV is byte-identical to the one-process run."""
    x, sr = sf.read(str(example_audio), frames=sr_frames(example_audio, 20.0), always_2d=True)
    inputs = []
    for k in range(3):
        path = tmp_path / f"part{k}.wav"
        sf.write(str(path), x[int(k * 2.5 * sr) :], sr)
        inputs.append(str(path))
    one = cli("analyze", *inputs, "--out", str(tmp_path / "one"), "-q", "--jobs", "1")
    two = cli("analyze", *inputs, "--out", str(tmp_path / "two"), "-q", "--jobs", "2")
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    for k in range(3):
        a = (tmp_path / "one" / f"part{k}.csv").read_bytes()
        assert a == (tmp_path / "two" / f"part{k}.csv").read_bytes() and a.count(b"\n") > 20


def test_analyze_csv_header_and_formats(cli, example_audio, tmp_path):
    """mp3/wav/flac at any rate and channel count; header starts time_s,valence,arousal."""
    x, sr = sf.read(str(example_audio), frames=sr_frames(example_audio, 12.0), always_2d=True)
    inputs = []
    for name, rate, channels, fmt in [("a.wav", 48000, 1, "WAV"), ("b.flac", 22050, 2, "FLAC"),
                                      ("c.mp3", 44100, 2, "MP3"), ("d.ogg", 32000, 2, "OGG")]:
        y = x[:, :channels]
        if rate != sr:
            import soxr

            y = soxr.resample(y, sr, rate)
        path = tmp_path / name
        sf.write(str(path), y, rate, format=fmt)
        inputs.append(str(path))
    res = cli("analyze", *inputs, "--out", str(tmp_path / "out"), "-q")
    assert res.returncode == 0, res.stderr
    for path in inputs:
        stem = path.rsplit("/", 1)[1].split(".")[0]
        text = (tmp_path / "out" / f"{stem}.csv").read_text().splitlines()
        assert text[0].startswith("time_s,valence,arousal")
        assert 22 <= len(text) - 1 <= 24  # 12 s -> 24 hops (mp3 padding may cost one)


def sr_frames(path, seconds: float) -> int:
    return int(sf.info(str(path)).samplerate * seconds)


def test_silence_gives_valid_output(cli, tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(str(path), np.zeros(16000 * 6, np.float32), 16000)
    res = cli("analyze", str(path), "--out", str(tmp_path), "-q")
    assert res.returncode == 0, res.stderr
    rows = read_csv(tmp_path / "silence.csv")
    assert len(rows["time_s"]) == 12
    assert all(np.isfinite(rows["valence"])) and all(-1 <= v <= 1 for v in rows["valence"] + rows["arousal"])


def test_missing_file(cli, tmp_path):
    res = cli("analyze", str(tmp_path / "nope.wav"), "--out", str(tmp_path), "-q")
    assert_one_line_error(res, "not found")
    assert not (tmp_path / "nope.csv").exists()


def test_text_file_renamed_wav(cli, tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are my session notes, not audio\n" * 20)
    assert_one_line_error(cli("analyze", str(path), "--out", str(tmp_path), "-q"), "cannot decode")
    assert_one_line_error(cli("run", "--file", str(path), "--quiet", "--no-osc", "--no-ws"), "cannot decode")


def test_corrupt_file(cli, example_audio, tmp_path):
    good = tmp_path / "good.flac"
    x, sr = sf.read(str(example_audio), frames=sr_frames(example_audio, 5.0))
    sf.write(str(good), x, sr)
    data = bytearray(good.read_bytes())
    data[100:] = bytes(len(data) - 100)  # header survives, the frames are zeros
    bad = tmp_path / "bad.flac"
    bad.write_bytes(bytes(data))
    res = cli("analyze", str(bad), str(good), "--out", str(tmp_path / "out"), "-q")
    assert_one_line_error(res, "bad.flac")
    assert (tmp_path / "out" / "good.csv").exists()  # a bad file does not cost the others
    assert not (tmp_path / "out" / "bad.csv").exists()


def test_model_not_onnx(cli, example_audio, tmp_path):
    fake = tmp_path / "model.onnx"
    fake.write_text("not a model")
    res = cli("analyze", str(example_audio), "--out", str(tmp_path), "--model", str(fake), "-q")
    assert_one_line_error(res, "not an onnx model")


def test_model_without_metadata(cli, example_audio, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    frames = helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["batch", 20, 25, 64])
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 20])
    va = helper.make_tensor_value_info("va", TensorProto.FLOAT, ["batch", 20])
    graph = helper.make_graph([helper.make_node("Identity", ["mask"], ["va"])], "bare", [frames, mask], [va])
    path = tmp_path / "bare.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    res = cli("analyze", str(example_audio), "--out", str(tmp_path), "--model", str(path), "-q")
    assert_one_line_error(res, "no emotrack metadata")


def test_unknown_model_name(cli, example_audio, tmp_path):
    assert_one_line_error(cli("analyze", str(example_audio), "--out", str(tmp_path), "--model", "nosuch", "-q"),
                          "unknown model")


def test_port_in_use(cli, example_audio):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = cli("run", "--file", str(example_audio), "--fast", "--quiet", "--no-osc", "--ws-port", str(port))
    assert_one_line_error(res, "in use")


def test_unknown_device(cli):
    res = cli("run", "--device", "no-such-device-xyz", "--quiet", "--no-osc", "--no-ws", "--duration", "1")
    assert_one_line_error(res, "--file")


def test_bad_osc_target_and_config(cli, example_audio, tmp_path):
    assert_one_line_error(cli("run", "--file", str(example_audio), "--osc", "localhost", "--quiet"), "host:port")
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\nws_port = 'x\n")
    assert_one_line_error(cli("run", "--config", str(bad)), "toml")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[run]\nwebsocket_colour = 'red'\n")
    assert_one_line_error(cli("run", "--config", str(unknown)), "unknown option")


def test_config_file_sets_defaults_and_flags_win(cli, example_audio, tmp_path):
    cfg = tmp_path / "emotrack.toml"
    cfg.write_text(
        f"[run]\nfile = '{example_audio}'\nfast = true\nno_osc = true\nno_ws = true\nquiet = true\n"
        f"duration = 2.0\nsmoothing = 'triangle'\ncsv = '{tmp_path / 'from_config.csv'}'\n"
    )
    res = cli("run", "--config", str(cfg), "--csv", str(tmp_path / "from_flag.csv"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "from_flag.csv").exists() and not (tmp_path / "from_config.csv").exists()


def test_models_lists_bundled(cli):
    res = cli("models", "--json")
    assert res.returncode == 0, res.stderr
    import json

    cards = json.loads(res.stdout)
    names = {c["name"] for c in cards}
    assert "mca" in names
    for c in cards:
        assert c["frontend"] and c["sample_rate"] > 0 and c["windows_s"] and c["context_s"] >= max(c["windows_s"])


def test_help_explains_every_option(cli):
    res = cli("run", "--help")
    assert res.returncode == 0
    for flag in ("--file", "--device", "--fast", "--osc", "--osc-range", "--ws-port", "--smoothing", "--provider",
                 "--config", "--csv"):
        assert flag in res.stdout


NO_SOUND_CARD = {"XDG_RUNTIME_DIR": "/nonexistent", "PULSE_SERVER": "unix:/nonexistent/native"}


def test_default_run_without_input_device_tracks_the_example(cli):
    res = cli("run", "--duration", "2", "--no-osc", "--no-ws", env=NO_SOUND_CARD)
    assert res.returncode == 0, res.stderr
    assert "bundled example" in res.stdout
    hops = [line for line in res.stdout.splitlines() if line.startswith("t=")]
    assert len(hops) >= 2 and "dropped 0" in hops[-1]


def test_device_requested_but_none_present(cli):
    assert_one_line_error(cli("run", "--device", "0", "--duration", "1", "--no-osc", "--no-ws", env=NO_SOUND_CARD),
                          "--file")


def test_evaluate_command_prints_json_and_exits_zero(cli, data_root, tmp_path):
    import json

    res = cli("evaluate", "mca", "--data-root", str(data_root), "--datasets", "4q", "--limit", "4",
              "--cache", str(tmp_path), "-q", timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(res.stdout)
    assert report["n_clips"] == 4 and 0 <= report["quadrant"]["weighted_f1"] <= 1
