"""The leaderboard's HTML page: self-contained, every name escaped, tables and SVG plots that a real
browser (headless Chromium) renders."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.reporting.html import pareto_front, render_html
from bench.reporting.leaderboard import Price, build
from tests.recordfactory import make_record

EVIL = "<script>alert('x')</script> & \"Box\""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]


def _board():
    records = [
        make_record(hardware="AMD EPYC x2", backend="cpu", median_ms=1.0, seed=1),
        make_record(hardware="AMD EPYC x2", backend="openvino", median_ms=0.5, seed=2,
                    metrics={"samples_per_j": 300.0, "samples_per_j_ci_low": 280.0, "samples_per_j_ci_high": 320.0}),
        make_record(hardware=EVIL, backend="cpu", median_ms=2.0, seed=3),
        make_record(hardware="AMD EPYC x2", backend="cpu", workload="other", median_ms=4.0, seed=4),
    ]
    prices = {"AMD EPYC x2": Price("AMD EPYC x2", 0.1, "USD", "test")}
    return build(records, prices=prices, source="sqlite:///results/bench.db", selection="suite=fake")


def test_pareto_front():
    # (latency, throughput): the first dominates the third; the second is faster but has lower throughput.
    assert pareto_front([(1.0, 100.0), (0.5, 50.0), (2.0, 90.0), (1.0, 100.0)]) == [0, 1, 3]


def test_page_is_self_contained_and_escapes_every_name():
    html = render_html(_board(), generated="2026-12-01T00:00:00+00:00")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;Box&quot;" in html
    assert not re.search(r"""(src|href)\s*=|@import|url\(|https?://(?!www\.w3\.org/2000/svg")""", html)
    assert html.count("<svg") == 3  # two scatter plots, one energy chart
    assert 'class="pareto"' in html or 'class="point front"' in html
    assert "No energy figure in these records" in html  # the workload without energy says so


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if path is None:
        pytest.skip("headless Chromium is not installed (Debian package `chromium`; .ci/run installs it): "
                    "the page's rendering is not checked in a browser here")
    return path


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=180,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})


@pytest.mark.slow
def test_chromium_renders_the_tables_and_plots(tmp_path):
    page = tmp_path / "leaderboard.html"
    page.write_text(render_html(_board()), encoding="utf-8")
    proc = _run(["--dump-dom", page.as_uri()], tmp_path)
    dom = proc.stdout
    assert proc.returncode == 0 and "<table" in dom, proc.stderr[-2000:]
    rows = re.findall(r"<tr class=\"[^\"]*\">", dom)
    assert len(rows) == 4  # three rows for one workload, one for the other
    assert len(re.findall(r"<svg\b", dom)) == 3 and len(re.findall(r"<circle\b", dom)) == 4
    assert "<script" not in dom  # the hostile label stayed text
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in dom
    shot = tmp_path / "shot.png"
    proc = _run(["--window-size=1200,1600", "--hide-scrollbars", f"--screenshot={shot}", page.as_uri()], tmp_path)
    assert shot.is_file(), proc.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 20  # text, table rules, coloured plot marks: not a blank page


def test_the_page_embeds_the_scaling_plot_with_names_escaped():
    pytest.importorskip("matplotlib")
    from bench.reporting import scaling
    from tests.recordfactory import make_record

    records = [make_record(hardware="<script>alert(1)</script>", batch_size=b, median_ms=1.0 + b / 4, seed=b)
               for b in (1, 2, 4, 8)]
    curves = [c for c in scaling.curves(records) if len(c.points) >= 2]
    assert len(curves) == 1 and [p.batch_size for p in curves[0].points] == [1, 2, 4, 8]
    svg = scaling.plot_svg(curves)
    assert svg.startswith("<svg") and "<script>" not in svg
    html = render_html(_board(), generated="2026-12-01T00:00:00+00:00", scaling_svg=svg)
    assert "Scaling with batch size" in html and html.count("<svg") >= 2
    assert "<script>" not in html


def test_the_page_shows_converged_warnings_and_open_interval_ends():
    tail = [100_000_000] * 51 + [102_600_000] * 2  # 53 samples: p99 has no upper bound
    records = [make_record(hardware="box", backend="cpu", scenario="latency", batch_size=1, raw_samples=tail,
                           warnings=[EVIL], metrics={"converged": False}),
               make_record(hardware="box", backend="openvino", scenario="latency", batch_size=1, median_ms=50.0,
                           seed=2, metrics={"samples_per_j": 3.0, "samples_per_j_ci_low": 2.5})]
    html = render_html(build(records), generated="2026-12-01T00:00:00+00:00")
    assert "<th>converged</th><th>warnings</th><th>repeats</th>" in html
    assert "<td>no</td><td>1: &lt;script&gt;" in html and "<script" not in html.lower()
    assert '<tr class="unbounded"><td class="rank">2?</td>' in html
    assert "no upper bound (n=53; 368 bound it)" in html
    # the scatter's p99 bar and the energy bar (no upper end in its record) run dashed to the plot's edge
    scatter = html[html.index('class="scatter"'):html.index("</svg>", html.index('class="scatter"'))]
    energy = html[html.index('class="energy"'):html.index("</svg>", html.index('class="energy"'))]
    assert scatter.count('class="open"') == 1 and energy.count('class="open"') == 1
    assert "samples/J (3.000 [2.500, no upper bound (its record holds none)])" in energy
