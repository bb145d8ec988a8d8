"""The printable report (README "Statistics"): bokmål HTML with inline SVG, no script, no external
asset; rendered by a real browser (headless Chromium, Debian's `chromium` package) and printed
to PDF, whose pages and text are checked."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from tests.statistics.test_statistics import build_municipality

REPORT = "/api/v1/statistics/report"
QUERY = {"municipality": "0301", "year": "2027"}


def _install_chromium() -> str | None:
    """The machine's chromium, or Debian's package installed for the test where this process
    may install packages (as root, with apt-get); None where it cannot be had."""
    found = shutil.which("chromium")
    if found or os.environ.get("CASESVC_NO_BROWSER_INSTALL"):
        return found
    apt = shutil.which("apt-get")
    if not apt or os.geteuid() != 0:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    packages = ["chromium", "poppler-utils", "fonts-dejavu-core"]
    install = [apt, "install", "-y", "--no-install-recommends", *packages]
    if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run([apt, "update"], env=env, capture_output=True, timeout=600)
        subprocess.run(install, env=env, capture_output=True, timeout=900)
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium():
    path = _install_chromium()
    if path is None:
        pytest.skip(
            "headless Chromium (Debian's chromium package) is not installed and cannot be installed "
            "here (needs root and apt-get)"
        )
    return path


class _Scan(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.urls = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name != "xmlns" and (
                name in ("src", "href", "xlink:href", "action") or (value or "").startswith(("http:", "https:", "//"))
            ):
                self.urls.append((tag, name, value))


@pytest.fixture
def report(app, world):
    build_municipality(app, world)
    resp = world["slt"].get(REPORT, query_string=QUERY)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    return resp


def test_the_report_is_a_whole_page_in_bokmal_without_script_or_external_asset(report):
    assert report.mimetype == "text/html"
    assert "script-src" not in report.headers["Content-Security-Policy"]
    assert "default-src 'none'" in report.headers["Content-Security-Policy"]
    html = report.get_data(as_text=True)
    assert '<html lang="nb">' in html
    scan = _Scan()
    scan.feed(html)
    assert "script" not in scan.tags and "link" not in scan.tags and "img" not in scan.tags
    assert scan.urls == []
    assert "url(" not in html and "@import" not in html
    assert scan.tags.count("svg") == 7 and "@media print" in html
    assert "Saker opprettet" in html and "Periode: 1. januar 2027 – 31. desember 2027" in html
    assert re.search(r"Laget \d+\. \w+ \d{4} kl\. \d\d:\d\d", html)
    assert "Et antall fra 1 til 4 vises aldri" in html
    # a hidden figure stays hidden in the report too: Q1's school cases (2) are not in it
    row = re.search(r"<th scope=\"row\">Skolen</th>(.*?)</tr>", html).group(1)
    assert re.findall(r">([^<]+)</td>", row) == ["skjult", "0", "0", "0", "skjult"]


def test_the_report_is_for_statistics_readers_of_that_municipality(app, world):
    assert world["police"].get(REPORT, query_string=QUERY).status_code == 403
    assert world["slt"].get(REPORT, query_string={**QUERY, "municipality": "4601"}).status_code == 403
    resp = world["slt"].get(REPORT, query_string={"municipality": "0301"})
    assert resp.status_code == 422 and "year" in resp.json["errors"]


def test_the_report_prints_in_a_real_browser(report, chromium, tmp_path):
    page = tmp_path / "report.html"
    page.write_bytes(report.get_data())
    pdf = tmp_path / "report.pdf"
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-pdf-header-footer",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert pdf.exists() and pdf.stat().st_size > 0, result.stderr[-2000:]
    from pypdf import PdfReader

    reader = PdfReader(str(pdf))
    assert 2 <= len(reader.pages) <= 8
    width, height = (float(v) for v in reader.pages[0].mediabox[2:])
    assert round(width / 72 * 25.4) == 210 and round(height / 72 * 25.4) == 297  # A4, from the print style sheet
    text = "\n".join(p.extract_text() for p in reader.pages)
    flat = " ".join(text.split())
    for words in (
        "Statistikk for rusmiddelpolitisk handlingsplan",
        "Kommune 0301",
        "Saker opprettet",
        "Reaksjoner startet",
        "Rusprøver",
        "Dager fra opprettelse til første reaksjon",
        "Et antall fra 1 til 4 vises aldri",
        "skjult",
        "Hele året",
    ):
        assert words in flat, words
    assert "296" in flat  # Q1's p90 wait, shown in its table
    if shutil.which("pdftoppm"):
        subprocess.run(
            ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
            check=True,
            timeout=120,
        )
        assert list(tmp_path.glob("page*.png"))
