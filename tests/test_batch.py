"""Catalogue analysis (``emotrack analyze --engine ray``, ``emotrack.batch``): inputs, equality with plain
``analyze``, failures recorded per file, resume, Parquet, one-line errors, and ray staying out of plain ``analyze``.

The Ray tests share one embedded Ray (2 CPUs) per module: starting Ray costs seconds on 2 cores, and the module
takes ~30 s in all (hence ``slow``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emotrack.analyze import analyze_files
from emotrack.batch import DONE_FILE, FAILED_FILE, Item, analyze_catalogue, collect_inputs, write_parquet
from emotrack.csvout import read_csv
from emotrack.errors import ConfigError
from emotrack.inference import ModelRunner
from emotrack.realtime.smoothing import make_smoother
from tests.conftest import REPO, assert_one_line_error

# ------------------------------------------------------------------------------------------ inputs (no Ray)


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_folders_globs_and_manifests_expand_in_order_and_mirror_paths(tmp_path):
    lib = tmp_path / "lib"
    for rel in ("a/01.mp3", "a/cover.jpg", "b/01.flac", "b/.hidden.wav", ".trash/x.wav", "top.WAV"):
        _touch(lib / rel)
    items = collect_inputs([lib])
    assert [(i.path.relative_to(lib).as_posix(), i.csv.as_posix()) for i in items] == [
        ("a/01.mp3", "a/01.csv"), ("b/01.flac", "b/01.csv"), ("top.WAV", "top.csv")]

    glob_items = collect_inputs([str(lib / "**" / "01.*")])
    assert [i.csv.as_posix() for i in glob_items] == ["a/01.csv", "b/01.csv"]

    manifest = tmp_path / "list.txt"
    manifest.write_text("# catalogue\nlib/a/01.mp3\n\n  lib/top.WAV  \nlib/b\n/abs/missing.wav\n")
    listed = collect_inputs([manifest, lib / "top.WAV"])  # the second top.WAV is the same file: kept once
    assert [i.csv.as_posix() for i in listed] == ["lib/a/01.csv", "lib/top.csv", "lib/b/01.csv", "missing.csv"]

    direct = collect_inputs([lib / "a" / "01.mp3", tmp_path / "nope.ogg"])  # named files: <stem>.csv as analyze
    assert [i.csv.as_posix() for i in direct] == ["01.csv", "nope.csv"]


def test_bad_inputs_are_one_line_config_errors(tmp_path):
    _touch(tmp_path / "a" / "song.mp3")
    _touch(tmp_path / "b" / "song.mp3")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="would both write song.csv"):
        collect_inputs([tmp_path / "a" / "song.mp3", tmp_path / "b" / "song.mp3"])
    with pytest.raises(ConfigError, match="no audio files"):
        collect_inputs([tmp_path / "empty"])
    with pytest.raises(ConfigError, match="no audio file matches"):
        collect_inputs([str(tmp_path / "*.opus")])
    loop = tmp_path / "loop.m3u"
    loop.write_text("loop.m3u\n")
    with pytest.raises(ConfigError, match="includes itself"):
        collect_inputs([loop])


def test_plain_analyze_does_not_import_ray(example_audio, tmp_path):
    code = ("import sys\nfrom emotrack.cli import main\n"
            f"rc = main(['analyze', {str(example_audio)!r}, '--out', {str(tmp_path)!r}, '-q', '--jobs', '1'])\n"
            "assert rc == 0, rc\nassert 'ray' not in sys.modules, 'plain analyze imported ray'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / f"{example_audio.stem}.csv").is_file()


def test_engine_errors_are_one_line(cli, example_audio, tmp_path):
    no_ray = ("import sys\nsys.modules['ray'] = None\nfrom emotrack.cli import main\n"
              f"sys.exit(main(['analyze', {str(example_audio)!r}, '--out', {str(tmp_path)!r}, '--engine', 'ray']))\n")
    res = subprocess.run([sys.executable, "-c", no_ray], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert_one_line_error(res, "--engine ray needs the ray extra: pip install 'emotrack[ray]'")
    assert_one_line_error(cli("analyze", str(example_audio), "-o", str(tmp_path), "--address", "x:1"),
                          "--address needs --engine ray")
    assert_one_line_error(cli("analyze", str(example_audio), "-o", str(tmp_path), "--engine", "ray",
                              "--address", "no-port"), "expected HOST:PORT")


# ------------------------------------------------------------------------------------------ on Ray


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'emotrack[ray]')")
    ray.init(num_cpus=2, logging_level="ERROR", log_to_driver=False, include_dashboard=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory, example_audio) -> Path:
    """The bundled example, three 10-20 s pieces of it in a subfolder and random bytes named ``.wav``."""
    root = tmp_path_factory.mktemp("catalogue")
    data, rate = sf.read(str(example_audio), dtype="float32", always_2d=True)
    (root / "pieces").mkdir()
    for i, (start, length) in enumerate([(5, 12), (20, 16), (40, 19)]):
        sf.write(str(root / "pieces" / f"piece{i}.flac"), data[start * rate:(start + length) * rate], rate)
    sf.write(str(root / "example.wav"), data, rate, subtype="PCM_16")
    (root / "broken.wav").write_bytes(np.random.default_rng(0).bytes(20_000))
    return root


@pytest.fixture(scope="module")
def runner() -> ModelRunner:
    return ModelRunner(provider="cpu")


def _assert_same_csv(a: Path, b: Path) -> None:
    ca, cb = read_csv(a), read_csv(b)
    assert list(ca) == list(cb)
    for name in ca:
        np.testing.assert_allclose(ca[name], cb[name], atol=1e-5, err_msg=f"{a.name}: {name}")


@pytest.mark.slow
def test_ray_run_matches_plain_analyze_records_failures_and_resumes(ray_session, catalogue, runner, tmp_path):
    smoother = make_smoother("ema")
    items = collect_inputs([catalogue])
    out = tmp_path / "ray"
    first = analyze_catalogue(items, out, runner, smoother, provider="cpu", jobs=2, progress=False)
    assert (first.analysed, first.skipped, first.workers) == (4, 0, 2)
    assert [p.name for p, _ in first.failed] == ["broken.wav"]
    assert "cannot decode" in first.failed[0][1] and "\n" not in first.failed[0][1]
    assert json.loads((out / FAILED_FILE).read_text())[0]["path"].endswith("broken.wav")

    good = [i for i in items if i.path.name != "broken.wav"]
    plain = tmp_path / "plain"
    assert analyze_files([i.path for i in good], plain, runner, smoother, progress=False) == []
    for item in good:
        _assert_same_csv(plain / f"{item.path.stem}.csv", out / item.csv)
    assert not list(out.rglob("*.part"))

    csvs = sorted(out.rglob("*.csv"))
    mtimes = [p.stat().st_mtime_ns for p in csvs]
    again = analyze_catalogue(items, out, runner, smoother, provider="cpu", jobs=2, progress=False)
    assert (again.analysed, again.skipped, len(again.failed)) == (0, 4, 1)  # the broken file is retried
    assert again.line(out).startswith("emotrack: 0 of 5 files analysed (1 failed, listed in ")
    assert "; 4 skipped: already done)" in again.line(out)
    assert [p.stat().st_mtime_ns for p in csvs] == mtimes

    piece = catalogue / "pieces" / "piece0.flac"
    data, rate = sf.read(str(piece))
    sf.write(str(piece), data[: 10 * rate], rate)  # a changed input is redone, the others still skipped
    hops_before = len(read_csv(out / "pieces" / "piece0.csv")["time_s"])
    changed = analyze_catalogue(good, out, runner, smoother, provider="cpu", jobs=2, progress=False)
    assert (changed.analysed, changed.skipped, changed.failed) == (1, 3, [])
    assert not (out / FAILED_FILE).exists()
    assert len(read_csv(out / "pieces" / "piece0.csv")["time_s"]) < hops_before
    assert len((out / DONE_FILE).read_text().splitlines()) == 5

    rows = write_parquet(tmp_path / "curves.parquet", [(i.path, out / i.csv) for i in good])
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "curves.parquet")
    assert table.num_rows == rows == sum(len(read_csv(out / i.csv)["time_s"]) for i in good)
    assert table.column_names[:3] == ["input", "time_s", "valence"]


@pytest.mark.slow
def test_cli_ray_engine_one_line_errors_summary_and_parquet(ray_session, catalogue, tmp_path, cli):
    """The command as a user types it (its own embedded Ray): failures and the summary, one line each."""
    out = tmp_path / "out"
    res = cli("analyze", str(catalogue / "pieces"), str(catalogue / "broken.wav"), "--engine", "ray", "--jobs", "2",
              "--out", str(out), "--parquet", str(tmp_path / "c.parquet"), "--provider", "cpu", timeout=240)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[0].startswith("emotrack: error: cannot decode"), res.stderr
    assert lines[1].startswith("emotrack: 3 of 4 files analysed (1 failed, listed in "), lines[1]
    assert "on 2 Ray workers" in lines[1], lines[1]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.csv")) == [
        "piece0.csv", "piece1.csv", "piece2.csv"]
    import pyarrow.parquet as pq

    assert set(pq.read_table(tmp_path / "c.parquet").column("input").to_pylist()) == {
        str(catalogue / "pieces" / f"piece{i}.flac") for i in range(3)}


@pytest.mark.slow
@pytest.mark.data
def test_real_mp3_clips_match_plain_analyze(ray_session, data_root, runner, tmp_path):
    clips = sorted((data_root / "4q" / "Q1").glob("*.mp3"))[:1] + sorted((data_root / "4q" / "Q3").glob("*.mp3"))[:1]
    if len(clips) < 2:
        pytest.skip(f"no 4Q mp3 clips under {data_root / '4q'}")
    items = [Item(c, Path(f"{c.stem}.csv")) for c in clips]
    summary = analyze_catalogue(items, tmp_path / "ray", runner, None, provider="cpu", jobs=2, progress=False)
    assert (summary.analysed, summary.failed) == (2, [])
    assert analyze_files(clips, tmp_path / "plain", runner, None, progress=False) == []
    for c in clips:
        _assert_same_csv(tmp_path / "plain" / f"{c.stem}.csv", tmp_path / "ray" / f"{c.stem}.csv")


@pytest.mark.slow
def test_bad_address_is_one_line(ray_session, cli, example_audio, tmp_path):
    res = cli("analyze", str(example_audio), "-o", str(tmp_path), "--engine", "ray", "--address", "127.0.0.1:1")
    assert_one_line_error(res, "--address 127.0.0.1:1", "no ray cluster")
    assert os.listdir(tmp_path) == []
