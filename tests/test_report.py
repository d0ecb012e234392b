"""`emotrack report` and `emotrack sessions` (issue 16): HTML with decodable plots, a PDF whose pages render
non-blank, the CSV beside them, a report while another process still records, and one-line errors."""

from __future__ import annotations

import base64
import csv
import io
import json
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from emotrack.errors import ConfigError, OutputError
from emotrack.session import load_session
from emotrack.session.store import DB_NAME
from tests.conftest import assert_one_line_error, run_cli
from tests.test_session_store import SEED, Child, hop, new_store

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> tuple[Path, int]:
    """A session recorded from the default model's hops on the bundled example, with three markers."""
    from emotrack.session.example import record_file

    root = tmp_path_factory.mktemp("example-session")
    return root, record_file(root)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _images(text: str) -> list[np.ndarray]:
    """The embedded PNGs of an HTML report, decoded (each one must be a real, non-trivial picture)."""
    import matplotlib.image as mpimg

    assert "<svg" not in text  # this report embeds PNGs
    srcs = re.findall(r"<img [^>]*src='([^']*)'", text)
    images = []
    for src in srcs:
        assert src.startswith("data:image/png;base64,"), src[:60]  # embedded: no external file
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, len(data)
        images.append(mpimg.imread(io.BytesIO(data), format="png"))
    return images


def _non_blank(image: np.ndarray, min_std: float = 0.02) -> bool:
    """Not one flat colour, and some real ink (dark pixels), not only a faint tint."""
    rgb = image[..., :3]
    return float(rgb.std()) > min_std and float((rgb.min(axis=-1) < 0.5).mean()) > 0.001


def test_html_report_of_a_real_session_has_its_plots_tables_and_csv(example, tmp_path):
    from emotrack.session.report import CSV_HEADER, write_report

    root, sid = example
    session = load_session(root, sid)
    out, csv_path = write_report(session, tmp_path / "reports" / "p07.html")
    assert csv_path == tmp_path / "reports" / "p07.csv"
    text = out.read_text(encoding="utf-8")
    images = _images(text)
    assert len(images) == 3 and all(_non_blank(im, 0.05) for im in images)  # timeline, plane, quadrant shares
    assert images[0].shape[1] >= 1100  # the timeline is drawn wide enough to read
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", text)  # self-contained: no CDN, no remote asset
    for fragment in ("P-07", session.info.model, session.info.model_hash, "guitar enters", "drums start",
                     "client joins on drum", "no music", "happy / energetic", "calm / relaxed", "Periods with no music",
                     "valence mean ± sd", "href='p07.csv'", "Ended"):
        assert fragment in text, fragment
    assert session.info.model.startswith("mca-musicnn-")  # the example session ran the bundled default
    assert "still recording" not in text

    rows = _csv_rows(csv_path)
    assert list(rows[0]) == CSV_HEADER and len(rows) == len(session.hops) == 130
    assert [r["seq"] for r in rows] == [str(i) for i in range(130)]
    assert sorted(r["marker"] for r in rows if r["marker"]) == ["client joins on drum", "drums start", "guitar enters"]
    np.testing.assert_allclose([float(r["valence"]) for r in rows], session.hops.valence, atol=1e-6)
    assert {r["quadrant_name"] for r in rows if r["active"] == "0"} == {"no music"}
    assert not list(out.parent.glob(".*.part"))


def test_segments_shares_and_no_music_periods_are_right(tmp_path):
    from emotrack.session.report import no_music_periods, overall, segments

    store = new_store(tmp_path)
    for i in range(40):  # 0-5 s no music, 5-10 s Q1, 10-15 s no music, 15-20 s Q3
        quiet = i < 10 or 20 <= i < 30
        store.add_hop(hop(i, active=not quiet, v=0.5 if i < 20 else -0.5, a=0.5 if i < 20 else -0.5))
    store.add_marker("second half", wall_time=time.time(), stream_time=10.0, source="key")
    store.close()
    s = load_session(tmp_path)
    assert no_music_periods(s) == [(0.0, 5.0), (10.0, 15.0)]
    whole = overall(s)
    assert whole.seconds == {1: 5.0, 2: 0.0, 3: 5.0, 4: 0.0, 0: 10.0} and whole.share(0) == 0.5
    first, second = segments(s)
    assert (first.label, first.number, first.start, first.end, first.hops) == ("start", None, 0.0, 10.0, 20)
    assert (second.label, second.number, second.start, second.end, second.hops) == ("second half", 1, 10.0, 20.0, 20)
    assert first.seconds[1] == 5.0 and first.share(1) == 0.5 and second.seconds[3] == 5.0
    assert first.valence_mean == pytest.approx(0.5) and first.valence_std == pytest.approx(0.0)
    assert second.arousal_mean == pytest.approx(-0.5)


def test_pdf_report_pages_render_non_blank(example, tmp_path):
    from emotrack.session.report import write_report

    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    import matplotlib.image as mpimg

    root, sid = example
    out, csv_path = write_report(load_session(root, sid), tmp_path / "p07.pdf")
    assert out.read_bytes()[:5] == b"%PDF-" and len(_csv_rows(csv_path)) == 130
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(out), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 6, pages  # text, timeline, plane, shares, segments, no-music periods, markers
    images = [mpimg.imread(p) for p in pages]
    assert all(_non_blank(im) for im in images), [float(im[..., :3].std()) for im in images]
    assert all(_non_blank(im, 0.1) for im in images[1:4])  # the plot pages carry a lot of ink


def test_user_text_is_escaped_and_never_read_as_mathtext(tmp_path):
    from emotrack.session.report import write_report

    store = new_store(tmp_path, client="<script>alert(1)</script>", notes="costs $5 & <b>more</b>")
    for i in range(30):
        store.add_hop(hop(i, v=0.3 * np.sin(i / 5), a=0.3 * np.cos(i / 5)))
    store.add_marker("$x^2$ & <i>", wall_time=time.time(), stream_time=5.0, source="ws")
    store.close()
    s = load_session(tmp_path)
    html_out, _ = write_report(s, tmp_path / "r.html")
    text = html_out.read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>more" not in text and "$x^2$ &amp; &lt;i&gt;" in text
    pdf_out, _ = write_report(s, tmp_path / "r.pdf")  # a "$" in a label must not break matplotlib
    assert pdf_out.stat().st_size > 10_000


def test_an_empty_session_still_writes_a_report_that_says_so(tmp_path):
    from emotrack.session.report import write_report

    new_store(tmp_path).close()
    s = load_session(tmp_path)
    out, csv_path = write_report(s, tmp_path / "empty.html")
    assert "No hops were recorded in this session" in out.read_text(encoding="utf-8")
    assert _csv_rows(csv_path) == [] and csv_path.read_text().startswith("seq,stream_time")
    pdf, _ = write_report(s, tmp_path / "empty.pdf")
    if shutil.which("pdftoppm"):
        import matplotlib.image as mpimg

        subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "e")], check=True, timeout=60)
        [page] = sorted(tmp_path.glob("e-*.png"))
        assert _non_blank(mpimg.imread(page), 0.01)


def test_report_while_another_process_still_records(tmp_path):
    child = Child(tmp_path, pause=0.05)
    try:
        child.wait_hops(30)
        res = run_cli("report", str(tmp_path), "--out", str(tmp_path / "live.html"))
        listed = run_cli("sessions", str(tmp_path))
        reported = len(child.reported)
        assert child.proc.poll() is None  # the writer was never blocked or stopped
    finally:
        child.stop()
    assert res.returncode == 0, res.stderr
    assert "still recording" in res.stdout and "live.html" in res.stdout and "live.csv" in res.stdout
    text = (tmp_path / "live.html").read_text(encoding="utf-8")
    assert "Still recording" in text and len(_images(text)) == 3
    rows = len(_csv_rows(tmp_path / "live.csv"))
    assert 20 <= rows <= reported + 1, (rows, reported)  # the hops committed when the report read its snapshot
    assert listed.returncode == 0 and "recording" in listed.stdout, listed


def test_sessions_lists_every_session(example, tmp_path, cli):
    root = tmp_path / "room"
    shutil.copytree(example[0], root)
    second = new_store(root, client="P-08")
    for i in range(6):
        second.add_hop(hop(i))
    second.flush()  # left open: still recording while listed
    res = cli("sessions", str(root))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["id", "start", "duration", "hops", "markers", "model", "client", "state"]
    assert len(lines) == 3
    assert lines[1].split()[0] == "1" and "130" in lines[1] and "P-07" in lines[1] and "ended" in lines[1]
    assert lines[2].split()[0] == "2" and "P-08" in lines[2] and lines[2].rstrip().endswith("recording")
    listed = json.loads(cli("sessions", str(root / DB_NAME), "--json").stdout)
    assert [(s["id"], s["hops"], s["markers"], s["state"]) for s in listed] == [(1, 130, 3, "ended"),
                                                                               (2, 6, 0, "recording")]
    second.close()
    res = cli("report", str(root), "--session", "1", "--out", str(tmp_path / "one.pdf"))
    assert res.returncode == 0 and "session 1:" in res.stdout and (tmp_path / "one.csv").exists(), res


def test_a_corrupt_store_is_a_one_line_error(tmp_path, cli):
    rng = random.Random(SEED)
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(rng.randbytes(16384))
    res = cli("report", str(bad), "--out", str(tmp_path / "r.html"))
    assert_one_line_error(res, "bad.sqlite", "corrupt")
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "r.csv").exists(), SEED
    assert_one_line_error(cli("sessions", str(bad)), "bad.sqlite")

    damaged = tmp_path / "damaged"  # a real store with its pages overwritten past the header
    new_store(damaged).close()
    db = damaged / DB_NAME
    data = bytearray(db.read_bytes())
    data[100:] = rng.randbytes(len(data) - 100)
    db.write_bytes(bytes(data))
    assert_one_line_error(cli("report", str(damaged), "--out", str(tmp_path / "d.html")), "sessions.sqlite")


def test_report_arguments_are_checked_in_one_line(example, tmp_path, cli):
    root, _ = example
    assert_one_line_error(cli("report", str(root), "--out", str(tmp_path / "r.docx")), ".html or .pdf", "r.docx")
    assert_one_line_error(cli("report", str(root), "--session", "42", "--out", str(tmp_path / "r.html")),
                          "no session 42", "sessions: 1")
    assert_one_line_error(cli("report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.html")),
                          "no session store at")
    assert_one_line_error(cli("sessions", str(tmp_path)), "no session store", "sessions.sqlite")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(cli("report", str(root), "--out", str(blocker / "r.html")), "cannot write report")


def test_write_report_errors(example, tmp_path, tmpfs):
    from emotrack.session.report import write_report

    session = load_session(example[0])
    with pytest.raises(ConfigError, match=r"\.html or \.pdf"):
        write_report(session, tmp_path / "r.png")
    full = tmpfs("full", "size=64k")
    with pytest.raises(OutputError, match="cannot write report .*No space left on device") as err:
        write_report(session, full / "r.html")
    assert "\n" not in str(err.value)
    assert list(full.iterdir()) == []  # neither a half report nor a half CSV nor a .part


def test_summary_picture_is_1200_px_wide(example, tmp_path):
    import matplotlib.image as mpimg

    from emotrack.session.report import save_summary_png

    out = save_summary_png(load_session(example[0]), tmp_path / "report-example.png")
    image = mpimg.imread(out)
    assert abs(image.shape[1] - 1200) <= 2 and _non_blank(image, 0.1)
