"""``facebehavior report``: the page's numbers, its self-containment, and how headless Chromium renders it."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facebehavior.cli import main
from facebehavior.schema import AUS_17, EXPRESSIONS_8
from facebehavior.viz.report import summarise, write_report

AUS_18 = (*AUS_17, 45)


def face_row(source: str, frame: int, fid: int, *, valence: float, happy: float) -> dict:
    r = {"source": source, "frame": frame, "timestamp": frame / 10, "face_id": fid, "success": 1}
    r |= {"x1": 40.0 + 90 * fid, "y1": 30.0, "x2": 110.0 + 90 * fid, "y2": 120.0, "confidence": 0.9}
    r |= {f"expr_{e}": (1 - happy) / 7 for e in EXPRESSIONS_8} | {"expr_happiness": happy}
    r |= {"expression": "happiness"}
    r |= {f"AU{a:02d}_prob": 0.02 for a in AUS_18} | {"AU12_prob": 0.8, "AU06_prob": 0.6, "AU25_prob": 0.55}
    r |= {"valence": valence, "arousal": -0.2}
    return r


def results(photo: str = "photo.png") -> pd.DataFrame:
    """A clip (40 analysed frames: face 0 in 0–9 and 20–29, face 1 in 0–29, none in 30–39) and a photo."""
    rows = [
        face_row("clip.mp4", f, 0, valence=0.5 if f < 10 else 0.3, happy=0.9)
        for f in [*range(10), *range(20, 30)]
    ]
    rows += [face_row("clip.mp4", f, 1, valence=-0.6, happy=0.1) for f in range(30)]
    rows += [
        {"source": "clip.mp4", "frame": f, "timestamp": f / 10, "face_id": -1, "success": 0}
        for f in range(30, 40)
    ]
    rows += [face_row(photo, 0, 0, valence=0.25, happy=0.7)]
    return pd.DataFrame(rows)


def test_summary_numbers_by_hand():
    s = {(x.source, x.face_id): x for x in summarise(results())}
    assert set(s) == {("clip.mp4", 0), ("clip.mp4", 1), ("photo.png", 0)}  # success-0 rows are no face
    a, b, p = s["clip.mp4", 0], s["clip.mp4", 1], s["photo.png", 0]
    assert (a.frames, a.analysed_frames, a.share, a.first, a.last) == (20, 40, 0.5, 0, 29)
    assert (b.frames, b.share) == (30, 0.75) and (p.frames, p.share) == (1, 1.0)
    assert (
        a.valence == pytest.approx(0.4)
        and a.arousal == pytest.approx(-0.2)
        and b.valence == pytest.approx(-0.6)
    )
    assert a.expression["happiness"] == pytest.approx(0.9) and a.expression["neutral"] == pytest.approx(
        0.1 / 7
    )
    assert [(n, round(m, 3)) for n, m in a.top_aus] == [(12, 0.8), (6, 0.6), (25, 0.55)]
    with pytest.raises(ValueError, match="columns \\['face_id'\\] missing"):
        summarise(results().drop(columns="face_id"))


class Dom(HTMLParser):
    """Collects what the tests look at: elements by class, the summary cells, and every URL."""

    def __init__(self) -> None:
        super().__init__()
        self.classes: dict[str, int] = {}
        self.sources: list[str] = []
        self.cells: list[dict[str, str]] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self._cell: str | None = None
        self._svg = 0  # inside an inline SVG: its <title> tooltips are not cell text

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        self._svg += tag == "svg"
        for c in (a.get("class") or "").split():
            self.classes[c] = self.classes.get(c, 0) + 1
        if "source" in (a.get("class") or "").split():
            self.sources.append(a.get("data-source", ""))
        if tag == "tr" and a.get("class") == "face-row":
            self.cells.append({"data-face": a["data-face"]})
        if tag == "td" and self.cells:
            self._cell = (a.get("class") or "").split()[-1]
            self.cells[-1].setdefault(self._cell, "")
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        self._svg -= tag == "svg"

    def handle_data(self, data):
        if self._cell and self.cells and not self._svg:
            self.cells[-1][self._cell] += data


def parse(text: str) -> Dom:
    d = Dom()
    d.feed(text)
    return d


def check_dom(d: Dom) -> None:
    assert d.sources == ["clip.mp4", "photo.png"]
    assert d.classes["face"] == 3 and d.classes["timeline"] == 3  # a figure per face (photo: bars + VA point)
    cells = [{k: v.strip() for k, v in c.items()} for c in d.cells]
    assert [(c["face-id"], c["frames"], c["share"], c["valence"], c["arousal"]) for c in cells] == [
        ("0", "20", "50.0 %", "+0.400", "-0.200"),
        ("1", "30", "75.0 %", "-0.600", "-0.200"),
        ("0", "1", "100.0 %", "+0.250", "-0.200"),
    ]
    assert cells[0]["aus"] == "AU12 0.800 · AU06 0.600 · AU25 0.550"
    assert cells[0]["expr"] == "happiness 0.900" and cells[1]["expr"] == "neutral 0.129"
    # Self-contained: every image is inline, no external style, script or link.
    assert d.urls and all(u.startswith(("data:image/png;base64,", "#")) for u in d.urls)
    assert not d.tags & {"link", "script", "iframe"}


def test_report_html_structure_and_thumbnails(tmp_path):
    img = np.full((200, 300, 3), 90, np.uint8)
    img[30:120, 40:110] = (220, 180, 150)
    Image.fromarray(img).save(tmp_path / "photo.png")
    out = write_report(results(), tmp_path / "r" / "report.html", media_root=tmp_path)
    d = parse(out.read_text(encoding="utf-8"))
    check_dom(d)
    assert (
        d.classes.get("thumb", 0) == 3 + 1
    )  # 3 table cells + the photo's face image (clip.mp4 is not there)
    assert d.classes.get("overview") == 1
    # Without media: no thumbnails, same numbers.
    d2 = parse(write_report(results(), tmp_path / "r2.html").read_text(encoding="utf-8"))
    check_dom(d2)
    assert "overview" not in d2.classes and d2.classes.get("thumb") == 3
    with pytest.raises(ValueError, match=r"name it \*\.html"):
        write_report(results(), tmp_path / "r.pdf")


def chromium() -> str | None:
    return next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))), None
    )


def render(binary: str, page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--disable-extensions",
           f"--user-data-dir={tmp / 'profile'}", *args, page.resolve().as_uri()]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def colourful_share(png: Path) -> tuple[float, float, float]:
    """(pixel std, share of non-white pixels, share of saturated pixels) of a screenshot."""
    a = np.asarray(Image.open(png).convert("RGB")).astype(np.float64)
    sat = a.max(-1) - a.min(-1)
    return float(a.std()), float((a.min(-1) < 235).mean()), float((sat > 60).mean())


@pytest.mark.skipif(chromium() is None, reason="no chromium binary (Debian: apt-get install chromium); "
                    "the headless render check needs it")  # fmt: skip
def test_report_renders_in_headless_chromium(tmp_path):
    binary = chromium()
    page = write_report(results(), tmp_path / "report.html")
    dom = render(binary, page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    check_dom(parse(dom.stdout))  # the DOM as Chromium built it, not only the file we wrote
    shot = tmp_path / "shot.png"
    r = render(binary, page, tmp_path, f"--screenshot={shot}", "--window-size=1280,2200")
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    assert Image.open(shot).size == (1280, 2200)
    std, ink, colour = colourful_share(shot)
    assert std > 30 and ink > 0.08  # not a blank page (a blank one: std 0, ink 0)
    # The inline PNG figures really decode: with their data stripped the page loses its colour.
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r'src="data:image/png;base64,[^"]*"', 'src=""', page.read_text(encoding="utf-8")))
    shot2 = tmp_path / "bare.png"
    assert render(binary, bare, tmp_path, f"--screenshot={shot2}", "--window-size=1280,2200").returncode == 0
    assert colour > 0.04 and colour > 4 * colourful_share(shot2)[2]


def test_report_command(tmp_path, capsys):
    csv = tmp_path / "out.csv"
    results().to_csv(csv, index=False)
    assert main(["report", str(csv), "-o", str(tmp_path / "rep.html"), "--no-thumbnails"]) == 0
    check_dom(parse((tmp_path / "rep.html").read_text(encoding="utf-8")))
    assert main(["report", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "x.html")]) == 2
    assert "missing.csv: file not found" in capsys.readouterr().err
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    assert main(["report", str(tmp_path / "notes.csv"), "-o", str(tmp_path / "x.html")]) == 2
    assert "not a facebehavior results table" in capsys.readouterr().err
    assert main(["report", str(csv), "-o", str(tmp_path / "x.txt")]) == 2
    assert "name it *.html" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
