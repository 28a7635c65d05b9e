"""The leaderboard's HTML page: self-contained (one inline script that only sorts), every name escaped,
an overview matrix per kind of scenario, sortable tables, links to each record's JSON, charts only where
they compare something, and a layout that a real browser (headless Chromium) renders at desktop and
phone widths without the page getting wider than the screen."""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from bench.reporting.html import (SORT_SCRIPT, fmt_normalised, normalised, overview, pareto_front,
                                  record_links, relative_href, render_html)
from bench.reporting.leaderboard import Figure, Price, build
from tests.recordfactory import make_record

EVIL = "<script>alert('x')</script> & \"Box\""
ESCAPED_EVIL = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;Box&quot;"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--hide-scrollbars"]


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


def _section(html: str, title: str) -> str:
    start = html.index(f"<h2>{title}")
    end = html.find('<section class="workload"', start)
    return html[start:end if end >= 0 else len(html)]


def _assert_self_contained(html: str) -> None:
    """Nothing outside the page is loaded: no src, no @import, url() only to the page's own ids, links
    only to anchors or relative paths, and http(s) only in the SVG namespaces."""
    assert not re.search(r"\bsrc\s*=|@import", html)
    assert not re.search(r"url\((?!#)", html)
    for href in re.findall(r"""href\s*=\s*["']([^"']*)["']""", html):
        assert href.startswith("#") or not re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:|/", href), href
    assert not re.search(r"https?://(?!www\.w3\.org/(2000/svg|1999/xlink)\")", html)


def test_pareto_front():
    # (latency, throughput): the first dominates the third; the second is faster but has lower throughput.
    assert pareto_front([(1.0, 100.0), (0.5, 50.0), (2.0, 90.0), (1.0, 100.0)]) == [0, 1, 3]


def test_page_is_self_contained_and_escapes_every_name():
    pytest.importorskip("matplotlib")
    html = render_html(_board(), generated="2026-12-01T00:00:00+00:00")
    # one script, ours, inline; the hostile label is text everywhere (table, overview, tooltips, key)
    assert html.lower().count("<script") == 1 and f"<script>{SORT_SCRIPT}</script>" in html
    assert html.count(ESCAPED_EVIL) >= 4
    assert EVIL not in html and "alert('x')" not in html
    _assert_self_contained(html)
    assert html.count("<svg") == 1  # the three-row table's scatter; one energy figure compares nothing
    assert 'class="point front"' in html
    assert "One record here has an energy figure (see the table): no chart." in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_a_table_of_one_row_has_no_chart():
    pytest.importorskip("matplotlib")
    html = render_html(_board(), generated="2026-12-01T00:00:00+00:00")
    one = _section(html, "fake / other / throughput / batch 8")
    three = _section(html, "fake / tiny / throughput / batch 8")
    assert one.count("<tr class=") == 1 and "<svg" not in one and "<figure" not in one
    assert three.count("<tr class=") == 3 and three.count('<svg class="scatter"') == 1


def test_a_page_of_many_tables_charts_the_first_ones_only(monkeypatch):
    pytest.importorskip("matplotlib")
    import bench.reporting.html as page

    monkeypatch.setattr(page, "MAX_CHARTED_TABLES", 1)
    records = [make_record(hardware=hw, workload=wl, median_ms=1.0 + i, seed=i)
               for i, (wl, hw) in enumerate((("a", "Box A"), ("a", "Box B"), ("b", "Box A"), ("b", "Box B")))]
    html = render_html(build(records, None, {}, source="s"))
    assert "<svg" in _section(html, "fake / a / throughput")
    assert "<svg" not in _section(html, "fake / b / throughput")
    assert "this page charts its first 1 tables only" in _section(html, "fake / b / throughput")


def _overview_board():
    """throughput: a (1 ms a sample) and b (same speed, another seed: tied) and c (2 ms: half); latency:
    one row whose p99 lacks an upper end; training and server tables of their own."""
    tail = [100_000_000] * 51 + [102_600_000] * 2  # 53 samples: p99 has no upper bound
    records = [
        make_record(hardware="a", median_ms=1.0, seed=1),
        make_record(hardware="b", median_ms=1.0, seed=1, spread=0.031),
        make_record(hardware="c", median_ms=2.0, seed=3),
        make_record(hardware="a", scenario="latency", batch_size=1, median_ms=50.0, seed=4),
        make_record(hardware="c", scenario="latency", batch_size=1, raw_samples=tail),
        make_record(hardware="a", scenario="training", batch_size=32, median_ms=10.0, seed=5),
        make_record(hardware="c", scenario="training", batch_size=32, median_ms=40.0, seed=6),
        make_record(hardware="a", scenario="server", batch_size=1, metrics={"max_qps_at_slo": 400.0}),
        make_record(hardware=EVIL, scenario="server", batch_size=1, seed=7, metrics={"max_qps_at_slo": 100.0}),
    ]
    return build(records)


def test_normalised_maps_the_interval_and_keeps_missing_ends_missing():
    higher = normalised(Figure(50.0, 40.0, None), 100.0, higher_is_better=True)
    assert (higher.value, higher.low, higher.high) == (0.5, 0.4, None)
    lower = normalised(Figure(20.0, 10.0, None), 10.0, higher_is_better=False)  # p99 20 ms, no upper end
    assert (lower.value, lower.low, lower.high) == (0.5, None, 1.0)
    assert fmt_normalised(lower) == ("0.50", "[\u2014, 1.00]")
    assert fmt_normalised(normalised(Figure(30.0, 30.0, 30.0, has_ci=False), 120.0, True)) == ("0.25", "*")
    assert normalised(Figure(note="no energy sensor"), 1.0, True).value is None


def test_the_overview_matrices():
    board = _overview_board()
    matrices = overview(board)
    assert [m.title for m in matrices] == ["latency and throughput", "server (load at a latency requirement)", "training"]
    lt, server, training = matrices
    assert [g.title for _, g in lt.columns] == ["fake / tiny / latency / batch 1", "fake / tiny / throughput / batch 8"]
    assert list(lt.labels.values()) == ["a · cpu · fp32", "b · cpu · fp32", "c · cpu · fp32"]

    def cells(m, gi):
        return {label: (fmt_normalised(m.cells[(key, gi)].figure), m.cells[(key, gi)].row.rank_text)
                for key, label in m.labels.items() if (key, gi) in m.cells}

    lat_gi, tp_gi = (gi for gi, _ in lt.columns)
    # throughput: a and b tie at the top (=1), c has half their throughput
    tp = cells(lt, tp_gi)
    assert tp["a · cpu · fp32"][1] == "=1" and tp["b · cpu · fp32"][1] == "=1"
    assert {tp["a · cpu · fp32"][0][0], tp["b · cpu · fp32"][0][0]} <= {"1.00", "0.99"}
    assert tp["c · cpu · fp32"][0][0] == "0.50" and tp["c · cpu · fp32"][1] == "3"
    # latency, lower is better: best / value; c's p99 has no upper end, so its ratio has no lower end
    lat = cells(lt, lat_gi)
    assert lat["a · cpu · fp32"][0][0] == "1.00" and lat["a · cpu · fp32"][1] == "1"
    (value, interval), rank = lat["c · cpu · fp32"]
    p99 = {row.hardware: row.figures["latency_p99_ms"] for row in board.groups[lat_gi].rows}
    assert p99["c"].high is None and p99["c"].value > 1.5 * p99["a"].value  # c: 102.6 ms, unbounded above
    assert value == f"{p99['a'].value / p99['c'].value:.2f}" and interval.startswith("[\u2014, ") and rank == "2?"
    assert "b · cpu · fp32" not in lat
    # training and server: their own matrices, not mixed in
    assert {label: v[0][0] for label, v in cells(training, training.columns[0][0]).items()} == {
        "a · cpu · fp32": "1.00", "c · cpu · fp32": "0.25"}
    srv = cells(server, server.columns[0][0])
    assert srv["a · cpu · fp32"] == (("1.00", "*"), "1")
    assert srv[f"{EVIL} · cpu · fp32"] == (("0.25", "*"), "2")


def test_the_overview_on_the_page_links_each_cell_to_its_table():
    pytest.importorskip("matplotlib")
    board = _overview_board()
    html = render_html(board, generated="2026-12-01T00:00:00+00:00")
    start = html.index('<section class="overview"')
    ov = html[start:html.index("</section>", start)]
    assert ov.count('<table class="overview sortable"') == 3
    assert [h for h in re.findall(r"<h3>([^<]*)</h3>", ov)] == [
        "latency and throughput", "server (load at a latency requirement)", "training"]
    tp_index = next(i for i, g in enumerate(board.groups) if g.title == "fake / tiny / throughput / batch 8")
    assert f'id="w{tp_index}"' in html and f'<a href="#w{tp_index}">fake / tiny</a>' in ov
    # c's throughput cell: half the best, rank 3, linking to the throughput table
    assert re.search(r'<td data-value="0\.(49|50)\d*"><a href="#w', ov)
    assert re.search(rf'<a href="#w{tp_index}" title="c · cpu · fp32 in fake / tiny / throughput / batch 8: '
                     rf'throughput_sps [^"]*"><span class="v">0\.50</span><span class="rk">3</span>', ov)
    assert '<span class="rk">=1</span>' in ov and '<span class="rk">2?</span>' in ov
    assert '<span class="ci">[\u2014, ' in ov  # the missing end shown missing
    assert f"<th scope=\"row\">{ESCAPED_EVIL} · cpu · fp32</th>" in ov
    assert "continual" not in ov


def test_tables_are_sortable_and_read_in_rank_order_without_script():
    pytest.importorskip("matplotlib")
    html = render_html(_board(), generated="2026-12-01T00:00:00+00:00")
    table = _section(html, "fake / tiny / throughput / batch 8")
    assert '<table class="leaderboard sortable">' in table
    ranks = re.findall(r'<td class="rank" data-value="(\d+)">', table)
    assert ranks == ["1", "2", "3"]  # the order as ranked: the page reads the same with scripts off
    board = _board()
    tiny = next(g for g in board.groups if g.workload == "tiny")
    values = [float(v) for v in re.findall(r'<td class="fig" data-value="([^"]+)">[0-9]', table)]
    assert values[0] == tiny.rows[0].figures["throughput_sps"].value  # the point estimate, unrounded
    assert '<td class="fig">no energy sensor</td>' in table  # no value: sorts last
    assert "table.sortable" in SORT_SCRIPT and "data-value" in SORT_SCRIPT and "localeCompare" in SORT_SCRIPT


def test_record_links_are_relative_and_point_at_the_files(tmp_path):
    from bench.results.store import ResultsStore

    store = ResultsStore(tmp_path / "my results #1")
    records = [make_record(hardware="a", seed=1), make_record(hardware="b", seed=2, median_ms=2.0)]
    for r in records:
        store.write(r)
    store.close()
    store.json_path(records[1]).unlink()  # a record whose file is gone: no link, its id stays text
    page = tmp_path / "pages" / "board.html"
    page.parent.mkdir()
    html = render_html(build(records), generated="2026-12-01T00:00:00+00:00",
                       record_href=record_links(store.json_path, page))
    hrefs = [html_lib.unescape(h) for h in re.findall(r'<td class="record"><a href="([^"]+)"', html)]
    assert len(hrefs) == 1 and hrefs[0].startswith("../my%20results%20%231/records/2026-12-01/")
    assert (page.parent / unquote(hrefs[0])).resolve() == store.json_path(records[0]).resolve()
    assert f'<td class="record">{records[1].id[:8]} 2026-12-01</td>' in html
    _assert_self_contained(html)
    assert relative_href(tmp_path / "x" / "r.json", tmp_path / "y") == "../x/r.json"


def test_the_command_links_each_row_to_its_record(tmp_path):
    from bench.cli.main import main
    from bench.results.store import ResultsStore

    store = ResultsStore(tmp_path / "results")
    for i, hw in enumerate(("a", EVIL)):
        store.write(make_record(hardware=hw, seed=i))
    store.close()
    page = tmp_path / "out" / "board.html"
    assert main(["leaderboard", f"results.dir={tmp_path / 'results'}", "--format", "html", "--output", str(page)]) == 0
    html = page.read_text()
    hrefs = re.findall(r'<td class="record"><a href="([^"]+)"', html)
    assert len(hrefs) == 2 and all(h.startswith("../results/records/") for h in hrefs)
    assert all((page.parent / unquote(html_lib.unescape(h))).is_file() for h in hrefs)
    _assert_self_contained(html)


def test_without_matplotlib_the_page_says_what_is_missing(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    html = render_html(_board(), generated="2026-12-01T00:00:00+00:00")
    assert "The charts are not drawn: they need the plots extra (matplotlib)" in html
    assert "<svg" not in html and '<table class="overview sortable"' in html and html.count("<tr class=") == 4


def test_the_page_embeds_the_scaling_plot_with_names_escaped():
    pytest.importorskip("matplotlib")
    from bench.reporting import scaling

    records = [make_record(hardware="<script>alert(1)</script>", batch_size=b, median_ms=1.0 + b / 4, seed=b)
               for b in (1, 2, 4, 8)]
    curves = [c for c in scaling.curves(records) if len(c.points) >= 2]
    assert len(curves) == 1 and [p.batch_size for p in curves[0].points] == [1, 2, 4, 8]
    svg = scaling.plot_svg(curves)
    assert svg.startswith("<svg") and "<script>" not in svg and "&lt;script&gt;alert(1)" in svg
    html = render_html(_board(), generated="2026-12-01T00:00:00+00:00", scaling_svg=svg)
    assert "Scaling with batch size" in html and html.count("<svg") >= 2
    assert html.lower().count("<script") == 1
    _assert_self_contained(html)


def _svg_texts(svg: str) -> list[str]:
    return [html_lib.unescape(t) for t in re.findall(r"<text\b[^>]*>([^<]*)</text>", svg)]


def test_the_scaling_plot_labels_batches_lines_and_draws_intervals():
    pytest.importorskip("matplotlib")
    from bench.reporting import scaling

    records = [make_record(hardware="box", batch_size=b, median_ms=1.0 + b / 4, seed=b, n=60, spread=0.2)
               for b in (1, 2, 4, 8, 16)]
    for r in records:
        r.workload["latency_tier_ms"] = 5
    (curve,) = scaling.curves(records)
    point = curve.points[0]
    assert point.throughput_ci == (records[0].metrics["throughput_ci_low_sps"],
                                   records[0].metrics["throughput_ci_high_sps"])
    assert point.latency_p99_ci is not None and point.latency_p99_ci[1] is None  # 60 samples: p99 unbounded above
    svg = scaling.plot_svg([curve])
    texts = _svg_texts(svg)
    # the batch axis: plain sizes, log2-spaced (equal steps between doublings), never 2^k
    assert [t for t in texts if t in ("1", "2", "4", "8", "16")].count("16") == 4
    assert not any("^" in t or "mathdefault" in t for t in texts)
    ticks = re.findall(r'<text [^>]*text-anchor: middle" x="([\d.]+)" y="[\d.]+" [^>]*>(1|2|4|8|16)</text>', svg)
    xs = [float(x) for x, _ in ticks[:5]]
    steps = [b - a for a, b in zip(xs, xs[1:])]
    assert len(steps) == 4 and max(steps) - min(steps) < 0.5
    assert "latency requirement 5 ms" in texts
    assert "saturation: the smallest batch reaching 95% of the best" in texts
    assert any(t.startswith("saturation: batch ") for t in texts)
    # interval bars on throughput, p50 and p99 (both sides where both ends exist), p99's open upper end dashed
    assert svg.count('class="ci"') == 5 * 2 + 5 * 2 + 5 * 1
    assert svg.count('class="open"') == 5
    bare = [make_record(hardware="box", batch_size=b, median_ms=1.0 + b / 4, seed=b) for b in (1, 2)]
    for r in bare:
        for key in [k for k in r.metrics if "_ci_" in k]:
            del r.metrics[key]
    svg = scaling.plot_svg(scaling.curves(bare))
    assert 'class="ci"' not in svg and 'class="open"' not in svg  # no interval in the records: no bars


def test_the_page_shows_converged_warnings_and_open_interval_ends():
    pytest.importorskip("matplotlib")
    tail = [100_000_000] * 51 + [102_600_000] * 2  # 53 samples: p99 has no upper bound
    records = [make_record(hardware="box", backend="cpu", scenario="latency", batch_size=1, raw_samples=tail,
                           warnings=[EVIL], metrics={"converged": False, "samples_per_j": 2.0,
                                                     "samples_per_j_ci_low": 1.8, "samples_per_j_ci_high": 2.2}),
               make_record(hardware="box", backend="openvino", scenario="latency", batch_size=1, median_ms=50.0,
                           seed=2, metrics={"samples_per_j": 3.0, "samples_per_j_ci_low": 2.5})]
    html = render_html(build(records), generated="2026-12-01T00:00:00+00:00")
    assert "<th>converged</th><th>warnings</th><th>repeats</th>" in html
    assert "<td>no</td><td>1: &lt;script&gt;" in html and html.lower().count("<script") == 1
    assert '<tr class="unbounded"><td class="rank" data-value="2">2?</td>' in html
    assert "no upper bound (n=53; 368 bound it)" in html
    # the scatter's p99 bar and the energy bar (no upper end in its record) run dashed to the plot's edge
    scatter = html[html.index('class="scatter"'):html.index("</svg>", html.index('class="scatter"'))]
    energy = html[html.index('class="energy"'):html.index("</svg>", html.index('class="energy"'))]
    assert scatter.count('class="open"') == 1 and energy.count('class="open"') == 1
    assert "samples/J (3.000 [2.500, no upper bound (its record holds none)])" in energy


# ---------------------------------------------------------------- in a real browser

# Loaded into the harness page, after the page under test has loaded in an iframe of each width: the
# document's widths, what is on it, and the sort script at work; written as JSON into the harness.
MEASURE = """
addEventListener("load", function () {
  var out = {};
  document.querySelectorAll("iframe").forEach(function (frame) {
    var doc = frame.contentDocument, root = doc.documentElement, r = {};
    r.scrollWidth = root.scrollWidth;
    r.clientWidth = root.clientWidth;
    r.bodyScrollWidth = doc.body.scrollWidth;
    r.overviews = doc.querySelectorAll("table.overview").length;
    r.tables = doc.querySelectorAll("table.leaderboard").length;
    r.scripts = doc.querySelectorAll("script").length;
    r.sortButtons = doc.querySelectorAll("th button.sort").length;
    r.scrollers = Array.prototype.filter.call(doc.querySelectorAll(".scroll"),
      function (d) { return d.scrollWidth > d.clientWidth + 1; }).length;
    r.widestScroller = Math.max.apply(null, Array.prototype.map.call(doc.querySelectorAll(".scroll"),
      function (d) { return d.getBoundingClientRect().right; }));
    r.evil = Array.prototype.some.call(doc.querySelectorAll("td"),
      function (td) { return td.textContent.indexOf("<script>alert('x')<\\/script>") >= 0; });
    var table = Array.prototype.filter.call(doc.querySelectorAll("table.leaderboard"),
      function (t) { return t.tBodies[0].rows.length === 3; })[0];
    var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var col = heads.findIndex(function (th) { return th.textContent.indexOf("samples/s") === 0; });
    var hw = heads.findIndex(function (th) { return th.textContent.indexOf("hardware") === 0; });
    function column(i) {
      return Array.prototype.map.call(table.tBodies[0].rows, function (row) {
        var c = row.cells[i]; return c.getAttribute("data-value") || c.textContent; });
    }
    r.asRanked = column(col);
    heads[col].click(); r.ascending = column(col); r.ariaSort = heads[col].getAttribute("aria-sort");
    heads[col].click(); r.descending = column(col);
    heads[hw].click(); r.byHardware = column(hw);
    var joule = heads.findIndex(function (th) { return th.textContent.indexOf("samples/J") === 0; });
    heads[joule].click(); r.energyUp = column(joule);
    heads[joule].click(); r.energyDown = column(joule);
    out[frame.id] = r;
  });
  var pre = document.createElement("pre");
  pre.id = "result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
"""


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


def _png(path: Path) -> tuple[tuple[int, int], int]:
    from PIL import Image

    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
        return image.size, len(colours)


@pytest.mark.slow
def test_chromium_renders_the_page_at_desktop_and_phone_widths(tmp_path):
    """Two launches: the page itself at 1280 px (the rendered DOM and a screenshot), then a harness
    holding the page in iframes 390 and 1280 px wide (this Chromium lays a headless window out no
    narrower than 500 px, so a phone's width is an iframe's) with a screenshot at 390 px and the
    measurements of MEASURE."""
    pytest.importorskip("matplotlib")
    page_html = render_html(_board(), generated="2026-12-01T00:00:00+00:00")
    page = tmp_path / "leaderboard.html"
    page.write_text(page_html, encoding="utf-8")

    desktop = tmp_path / "desktop.png"
    proc = _run(["--window-size=1280,1600", f"--screenshot={desktop}", "--dump-dom", page.as_uri()], tmp_path)
    dom = proc.stdout
    assert proc.returncode == 0 and "<table" in dom, proc.stderr[-2000:]
    assert dom.count('<table class="overview sortable"') == 1 and dom.count('<table class="leaderboard sortable"') == 2
    assert len(re.findall(r"<tr class=\"[^\"]*\">", dom)) == 4  # three rows for one workload, one for the other
    assert dom.count('<button type="button" class="sort"') > 10  # the script ran: it adds the sort buttons
    assert dom.lower().count("<script") == 1 and "&lt;script&gt;alert('x')&lt;/script&gt;" in dom
    assert len(re.findall(r'<svg class="scatter"', dom)) == 1
    size, colours = _png(desktop)
    assert size == (1280, 1600) and colours > 20  # text, table rules, coloured plot marks: not a blank page

    frames = "".join(f'<iframe id="w{w}" style="border:0;display:block;width:{w}px;height:1600px" '
                     f'srcdoc="{html_lib.escape(page_html)}"></iframe>' for w in (390, 1280))
    harness = tmp_path / "harness.html"
    harness.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">{frames}'
                       f"<script>{MEASURE}</script></body></html>", encoding="utf-8")
    phone = tmp_path / "phone.png"
    proc = _run(["--window-size=390,1600", f"--screenshot={phone}", "--virtual-time-budget=5000", "--dump-dom",
                 harness.as_uri()], tmp_path)
    found = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.S)
    assert proc.returncode == 0 and found, proc.stderr[-2000:]
    result = json.loads(html_lib.unescape(found.group(1)))
    for width, r in ((390, result["w390"]), (1280, result["w1280"])):
        assert r["clientWidth"] == width
        assert r["scrollWidth"] <= width and r["bodyScrollWidth"] <= width, r  # nothing wider than the screen
        assert r["widestScroller"] <= width, r
        assert r["overviews"] == 1 and r["tables"] == 2 and r["scripts"] == 1 and r["evil"], r
        # sorting: by the point estimate (numbers, not text), both ways; then by text
        numbers = [float(v) for v in r["asRanked"]]
        assert numbers == sorted(numbers, reverse=True)
        assert [float(v) for v in r["ascending"]] == sorted(numbers) and r["ariaSort"] == "ascending"
        assert [float(v) for v in r["descending"]] == sorted(numbers, reverse=True)
        assert r["byHardware"] == sorted(r["byHardware"])
        # rows without the figure stay last both ways (a sort by text would put them first one way)
        assert r["energyUp"][0] == r["energyDown"][0] == "300.0" and r["energyUp"][1:] == ["no energy sensor"] * 2
    assert result["w390"]["scrollers"] >= 1  # at 390 px the tables scroll inside their own box
    size, colours = _png(phone)
    assert size == (390, 1600) and colours > 20
