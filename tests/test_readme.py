"""Readable commands, as the README describes them: `models` as a table, `analyze`'s closing line, every subcommand's
help with examples, and `run` saying why it falls back to the bundled example."""

from __future__ import annotations

import json
import re

from conftest import REPO

from emotrack.cli import build_parser
from emotrack.inference import ModelRunner


def test_models_is_a_compact_table_without_development_paths(cli):
    res = cli("models")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines  # piped: rich's 80 columns, nothing wrapped
    rows = [line for line in lines if re.match(r"^[* ] +\S+ \d+\.\d+\.\d+ ", line)]
    assert len(rows) >= 6 and rows[0].startswith("*") and "mca-musicnn" in rows[0]
    f1 = ModelRunner().card.metrics["4q_cv"]["weighted_f1"]  # the default's own card, as the table shows it
    assert re.search(rf"{100 * f1:.1f} %\s+4Q, VGMIDI, EMOPIA\s*$", rows[0]), rows[0]
    assert "../" not in res.stdout and "shared/data" not in res.stdout and "{" not in res.stdout


def test_models_json_keeps_the_cards_without_local_paths(cli):
    res = cli("models", "--json")
    assert res.returncode == 0, res.stderr
    cards = json.loads(res.stdout)
    text = json.dumps(cards)
    assert "../" not in text and "shared/data" not in text and str(REPO) not in text
    default = next(c for c in cards if c["default"])
    assert default["datasets"] == "4Q, VGMIDI, EMOPIA" and default["metrics"]["4q_cv"]["weighted_f1"] > 0.5
    assert {c["location"] for c in cards} <= {"bundled", "user"} and all(c["file"].endswith(".onnx") for c in cards)


def test_analyze_ends_with_a_summary_and_no_progress_frames_in_a_pipe(cli, example_audio, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_text("not audio")
    out = tmp_path / "curves"
    res = cli("analyze", str(example_audio), str(bad), "--out", str(out), "--jobs", "1")  # progress on, but piped
    assert res.returncode == 2, res.stderr
    assert "\r" not in res.stderr, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    found = re.fullmatch(r"emotrack: 1 of 2 files analysed \(1 failed\), 1:05 of audio in ([\d.]+) s, (\d+)x real "
                         r"time; CSVs in (.+)", last)
    assert found, res.stderr
    assert found.group(3) == str(out) and (out / "example.csv").is_file()
    assert abs(65 / float(found.group(1)) - int(found.group(2))) <= max(2, 0.1 * int(found.group(2)))


def _subcommands(parser, prefix=""):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, command in action.choices.items():
                yield prefix + name, command
                yield from _subcommands(command, f"{prefix}{name} ")


def test_every_subcommand_has_a_description_and_examples():
    commands = dict(_subcommands(build_parser()))
    assert {"run", "analyze", "devices", "models", "export", "data prepare"} <= set(commands)
    for name, command in commands.items():
        text = command.format_help()
        assert command.description, name
        examples = text.split("\nexamples:\n", 1)[-1].splitlines() if "\nexamples:\n" in text else []
        assert 1 <= len([e for e in examples if e.startswith("  emotrack ")]) <= 3, (name, text[-400:])
    run = commands["run"].format_help()
    assert "65 s unless --loop" in " ".join(run.split())
    assert "the first two" in " ".join(run.split())  # --channels: what capture really opens


def test_run_says_why_it_falls_back_to_the_example(cli, tmp_path):
    """No PortAudio library at all (sounddevice's import fails as it does then): the reason is in the header."""
    (tmp_path / "sounddevice.py").write_text('raise OSError("PortAudio library not found")\n')
    res = cli("run", "--duration", "1", "--no-osc", "--no-ws", "--no-osc-in", env={"PYTHONPATH": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    first = res.stdout.splitlines()[0]
    assert "PortAudio library not found" in first and "bundled example" in first and "--loop" in first, first
