"""The commands that read and share stored results: `bench leaderboard`, `bench compare`,
`bench export`, `bench import`, `bench report scaling|continual`.

Every command takes the results location as `bench run` does (``results=PROFILE``,
``results.dir=...``, ``results.url=...``). Bad input raises ConfigError or StoreError, which the CLI
shows as one line with exit code 2; reading commands open the store read-only and never create it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from bench.cli.args import Args, check_output, one_flag, parse_args, write_output, write_terminal
from bench.errors import ConfigError

__all__ = ["leaderboard_command", "compare_command", "export_command", "import_command", "report_command",
           "USAGE", "COMMAND_USAGE", "command_usage", "REPORTS"]

# Each command's lines of `bench --help`; `bench COMMAND --help` prints its own, with the selections.
COMMAND_USAGE = {
    "leaderboard": """\
  bench leaderboard [KEY=VALUE...] [metric=NAME] [prices=FOLDER] [--format terminal|markdown|csv|json|html]
                    [--output FILE] [--newest]
                                    rank hardware x backend x precision per workload (valid records, the
                                    best-supported per combination: converged, repeats, fewest warnings,
                                    newest; --newest: the newest). Ties where both 95% intervals have both
                                    ends and overlap; a rank marked N? rests on a point estimate alone""",
    "compare": """\
  bench compare BASELINE CANDIDATE [KEY=VALUE...] [--fail-on throughput:5%,latency_p99:10%]
                [--format terminal|markdown|json] [--output FILE]
                                    ratios with 95% intervals: between processes (Welch t) where both
                                    records hold repeats, else a bootstrap within one process.
                                    Exit 0: no --fail-on rule tripped; 1: the candidate is significantly
                                    worse beyond a threshold; 2: bad input; 3 (with --fail-on): a record
                                    behind a comparison is unconverged or noisy, so it is inconclusive""",
    "export": """\
  bench export [KEY=VALUE...] --format csv|parquet [--output FILE]
                                    one row per record, metrics as columns
  bench export [KEY=VALUE...] --to mlflow [--tracking-uri URI] [--experiment NAME]
                                    one MLflow run per record: config as params, metrics, tags, the
                                    record as record.json; records already there skipped. URI: as MLflow
                                    resolves it (MLFLOW_TRACKING_URI, else its default); experiment: bench""",
    "import": """\
  bench import FILE_OR_FOLDER...    merge records from other machines (skips ids already stored)""",
    "report": """\
  bench report scaling [KEY=VALUE...] [--format terminal|markdown] [--output FILE] [--plot FILE.png|.svg]
                                    throughput, latency and memory against batch size; saturation
                                    point and best batch within the latency requirement
  bench report continual [KEY=VALUE...] [--format terminal|markdown] [--output FILE] [--plot FILE.png|.svg]
                                    scenario=continual: each phase's latency, the time to adapt and its
                                    stages, training beside serving, the verdict while adapting; --plot
                                    each request's latency over time (several records: FILE-<id>.png)""",
}

SELECTIONS = """\
  Selections: KEY=VALUE on id, run_id, sweep_id, tag, status, valid, suite, workload, backend, device, precision,
  scenario, batch_size, hardware (same key twice: either value). In compare, BASELINE and CANDIDATE are
  one argument each, terms joined by commas (tag=nightly,backend=cpu). Results location as for
  bench run: results.dir=DIR, results.url=postgresql://USER@HOST/DB, results=PROFILE."""

USAGE = "\n".join(COMMAND_USAGE.values()) + "\n\n" + SELECTIONS


def command_usage(command: str) -> str:
    """`bench COMMAND --help`: the command's usage lines and how selections and the store are named."""
    return f"usage:\n{COMMAND_USAGE[command]}\n\n{SELECTIONS}"


# ---------------------------------------------------------------- bench leaderboard


def leaderboard_command(args: list[str]) -> int:
    from bench.reporting import leaderboard as lb
    from bench.config.location import open_store
    from bench.reporting import leaderboard_render as lr
    from bench.results.query import Selection, choices, shown_records

    parsed = parse_args(args, "leaderboard", ("--format", "--output"), options=("metric", "prices"),
                    switches=("--newest",))
    fmt = one_flag(parsed, "--format", "terminal")
    formats = ("terminal", "markdown", "csv", "json", "html")
    if fmt not in formats:
        raise ConfigError("--format", fmt, f"use one of {', '.join(formats)}", "is not a leaderboard format")
    output = one_flag(parsed, "--output")
    check_output("--output", output)
    metric = parsed.options.get("metric")
    if metric is not None:
        lb.check_metric(metric)
    if parsed.options.get("prices") == "":
        raise ConfigError("prices", "", "give a folder of price files or one YAML file, e.g. prices=conf/hardware",
                          "is empty")
    prices = lb.load_prices(Path(parsed.options["prices"]).expanduser() if "prices" in parsed.options else None)
    selection = Selection.parse(parsed.terms)
    store = open_store(parsed.results)
    try:
        board = lb.build_indexed(choices(store, selection), shown_records(store), metric, prices,
                                 source=store.display_url, selection=str(selection), newest="--newest" in parsed.flags)
        # The page's scaling plot: the records its tables show (one per hardware x backend x precision x
        # workload x scenario x batch, already read), not every selected record.
        records = [row.record for g in board.groups for row in g.rows] if fmt == "html" else []
    finally:
        store.close()
    if fmt == "terminal":
        write_terminal(lambda stream: lr.render_terminal(board, stream), output)
    elif fmt == "markdown":
        write_output(lr.render_markdown(board), output)
    elif fmt == "csv":
        write_output(lr.render_csv(board), output)
    elif fmt == "json":
        write_output(lr.render_json(board), output)
    else:
        from bench.reporting import scaling
        from bench.reporting.html import render_html

        curves = [c for c in scaling.curves(records) if len(c.points) >= 2]
        svg = None
        if len(curves) > scaling.MAX_PAGE_CURVES:
            print(f"bench: note: the page has no scaling plot: {len(curves)} configurations are too many for one "
                  f"plot (at most {scaling.MAX_PAGE_CURVES}); `bench report scaling KEY=VALUE... --plot FILE.svg` "
                  "draws a selection's", file=sys.stderr)
            curves = []
        if curves:
            try:
                svg = scaling.plot_svg(curves)
            except ConfigError:  # matplotlib missing: the page without its scaling plot, and the hint
                print(f"bench: warning: the page has no scaling plot (it needs matplotlib): {scaling.PLOTS_INSTALL}",
                      file=sys.stderr)
        from bench.reporting.html import timeline_plots_available

        if any(len(g.rows) > 1 or g.scenario == "continual" for g in board.groups) and not timeline_plots_available():
            print(f"bench: warning: the page has no charts or continual timeline plots (they need matplotlib): "
                  f"{scaling.PLOTS_INSTALL}", file=sys.stderr)
        from bench.reporting.html import record_links

        # Each row links to its record's JSON, relative to the page (none on stdout: the page's place is unknown).
        links = record_links(store.json_path, output) if output else None
        write_output(render_html(board, scaling_svg=svg, record_href=links), output)
    return 0


# ---------------------------------------------------------------- bench report scaling


REPORTS = ("scaling", "continual")


def report_command(args: list[str]) -> int:
    if not args or args[0] not in REPORTS:
        raise ConfigError("bench report", args[0] if args else "",
                          "use `bench report scaling [KEY=VALUE...]` or `bench report continual [KEY=VALUE...]`",
                          "is not a report")
    return _scaling_report(args[1:]) if args[0] == "scaling" else _continual_report(args[1:])


def _report_args(args: list[str], report: str) -> tuple[Args, str, Optional[str], Optional[str]]:
    """The options both reports take, checked before the store is read: (parsed, format, --output, --plot)."""
    from bench.reporting.scaling import require_matplotlib

    parsed = parse_args(args, f"report {report}", ("--format", "--output", "--plot"))
    fmt = one_flag(parsed, "--format", "terminal")
    if fmt not in ("terminal", "markdown"):
        raise ConfigError("--format", fmt, "use terminal or markdown", "is not a report format")
    plot_path = one_flag(parsed, "--plot")
    if plot_path is not None and Path(plot_path).suffix.lower() not in (".png", ".svg"):
        raise ConfigError("--plot", plot_path, "name a .png or .svg file", "is not a PNG or SVG file name")
    if plot_path is not None:
        require_matplotlib()
    check_output("--plot", plot_path)
    output = one_flag(parsed, "--output")
    check_output("--output", output)
    return parsed, str(fmt), output, plot_path


def _scaling_report(args: list[str]) -> int:
    from bench.reporting import scaling
    from bench.config.location import open_store
    from bench.results.query import Selection, summaries

    parsed, fmt, output, plot_path = _report_args(args, "scaling")
    selection = Selection.parse(parsed.terms)
    store = open_store(parsed.results)
    try:
        curves = scaling.curves(summaries(store, selection, "bench report scaling"))
    finally:
        store.close()
    if fmt == "markdown":
        write_output(scaling.render_markdown(curves), output)
    else:
        write_terminal(lambda stream: scaling.render_text(curves, stream), output)
    if plot_path is not None:
        path = scaling.plot(curves, plot_path)
        print(f"plot written to {path}", file=sys.stderr)
    return 0


def _continual_report(args: list[str]) -> int:
    """One block per scenario=continual record of the selection (oldest first), and with --plot one
    timeline per record. Failed records of the selection are named on stderr."""
    from bench.reporting import continual
    from bench.config.location import open_store
    from bench.results.query import Selection, select

    parsed, fmt, output, plot_path = _report_args(args, "continual")
    selection = Selection.parse(parsed.terms)
    store = open_store(parsed.results)
    try:
        selected = select(store, selection, "bench report continual")
    finally:
        store.close()
    records = [r for r in selected if continual.is_continual(r) and r.status == "ok"]
    failed = [r for r in selected if continual.is_continual(r) and r.status != "ok"]
    if not records:
        others = sorted({str(r.scenario.get("name")) for r in selected})
        what = (f"{len(failed)} failed scenario=continual record(s)" if failed
                else f"records of scenario {', '.join(others)} only")
        raise ConfigError("", "", "select records of scenario=continual runs that completed, e.g. "
                          "`bench report continual scenario=continual`",
                          f"bench report continual: the selection {selection} matches {what}, "
                          "no completed scenario=continual record")
    for r in failed:
        print(f"bench: note: record {r.id[:8]} ({r.workload.get('name')}) {r.status}: "
              f"{(r.error or {}).get('message', '')}", file=sys.stderr)
    if fmt == "markdown":
        write_output(continual.render_markdown(records), output)
    else:
        write_terminal(lambda stream: continual.render_terminal(records, stream), output)
    if plot_path is not None:
        for path in continual.plot(records, plot_path):
            print(f"plot written to {path}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- bench compare


def compare_command(args: list[str]) -> int:
    from bench.reporting import compare as cmp
    from bench.config.location import open_store
    from bench.results.query import Selection, index

    parsed = parse_args(args, "compare", ("--fail-on", "--seed", "--resamples", "--format", "--output"),
                        positional=True)
    fmt = one_flag(parsed, "--format", "terminal")
    formats = ("terminal", "markdown", "json")
    if fmt not in formats:
        raise ConfigError("--format", fmt, f"use one of {', '.join(formats)}", "is not a compare format")
    output = one_flag(parsed, "--output")
    check_output("--output", output)
    if len(parsed.positional) != 2:
        raise ConfigError("", "", "e.g. bench compare tag=before tag=after [--fail-on throughput:5%]",
                          f"`bench compare` takes a BASELINE and a CANDIDATE selection, got {len(parsed.positional)}")
    rules = [rule for text in parsed.flags.get("--fail-on", []) for rule in cmp.parse_fail_on(text)]
    seed = _int_flag(parsed, "--seed", 0, 0)
    resamples = _int_flag(parsed, "--resamples", cmp.RESAMPLES, 100)
    common = Selection.parse(parsed.terms)
    base_sel = Selection.parse_joined(parsed.positional[0]) + common
    cand_sel = Selection.parse_joined(parsed.positional[1]) + common
    differing = base_sel.differing(cand_sel)
    store = open_store(parsed.results)
    try:
        baseline = index(store, base_sel, "baseline")
        candidate = index(store, cand_sel, "candidate")
        # The index chooses each side's record per workload; only those are read, whole (the bootstrap
        # resamples their raw samples).
        result = cmp.compare_indexed(baseline, candidate, store.records, differing, seed=seed, resamples=resamples)
    finally:
        store.close()
    describe = lambda sel, recs: f"{sel} ({len(recs)} record(s))"  # noqa: E731
    sides = describe(base_sel, baseline), describe(cand_sel, candidate)
    verdict = cmp.check(result, rules)
    if fmt == "json":
        write_output(cmp.render_json(result, *sides, verdict, rules), output)
    elif fmt == "markdown":
        write_output(cmp.render_markdown(result, *sides, verdict, rules), output)
    else:
        lines = cmp.check_lines(verdict, rules)
        write_terminal(lambda stream: (cmp.render(result, *sides, stream),
                                       stream.write("".join(f"{line}\n" for line in lines))), output)
    return verdict.exit_code


def _int_flag(parsed: Args, flag: str, default: int, minimum: int) -> int:
    text = one_flag(parsed, flag)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ConfigError(flag, text, f"give a whole number >= {minimum}", "is not valid")
    return value


# ---------------------------------------------------------------- bench export / import


def export_command(args: list[str]) -> int:
    from bench.config.location import open_store
    from bench.results.query import EXPORT_FORMATS, Selection, export_store

    parsed = parse_args(args, "export", ("--format", "--output", "--to", "--tracking-uri", "--experiment"))
    to = one_flag(parsed, "--to")
    if to is not None:  # a tracking tool (bench.results.mlflow_export), not a file
        from bench.results.mlflow_export import DEFAULT_EXPERIMENT, export_to_mlflow

        if to != "mlflow":
            raise ConfigError("--to", to, "use --to mlflow, or --format csv|parquet [--output FILE] for a file",
                              "is not an export destination")
        for flag in ("--format", "--output"):
            if flag in parsed.flags:
                raise ConfigError(flag, None, "leave it out: --to mlflow writes runs to a tracking store, --format "
                                  "and --output a file", "cannot be combined with --to")
        uri, experiment = one_flag(parsed, "--tracking-uri"), one_flag(parsed, "--experiment", DEFAULT_EXPERIMENT)
        selection = Selection.parse(parsed.terms)
        import gc

        gc.enable()  # main() turns it off for reports; MLflow's clients make reference cycles, run after run
        store = open_store(parsed.results)
        try:
            result = export_to_mlflow(store, selection, uri, experiment or "")
        finally:
            store.close()
        print(result.message())
        return 0
    for flag in ("--tracking-uri", "--experiment"):
        if flag in parsed.flags:
            raise ConfigError(flag, None, f"add --to mlflow (bench export --to mlflow {flag} ...)",
                              "is an option of `bench export --to mlflow`")
    output = one_flag(parsed, "--output")
    fmt = one_flag(parsed, "--format")
    if fmt is None:
        suffix = Path(output).suffix.lower().lstrip(".") if output else ""
        fmt = suffix if suffix in EXPORT_FORMATS else "csv"
    if fmt not in EXPORT_FORMATS:
        raise ConfigError("--format", fmt, f"use one of {', '.join(EXPORT_FORMATS)}", "is not an export format")
    if fmt == "parquet" and output is None:
        raise ConfigError("--output", None, "give a file, e.g. --output results.parquet",
                          "is required for --format parquet")
    check_output("--output", output)
    selection = Selection.parse(parsed.terms)
    store = open_store(parsed.results)
    try:
        count = export_store(store, selection, fmt, Path(output).expanduser() if output else None, sys.stdout)
    finally:
        store.close()
    if output is not None:
        print(f"exported {count} record(s) to {output}", file=sys.stderr)
    return 0


def import_command(args: list[str]) -> int:
    from bench.config.location import open_store
    from bench.results.query import check_record_files, import_records

    parsed = parse_args(args, "import", (), positional=True)
    if parsed.terms:
        raise ConfigError(parsed.terms[0], None, "give files or folders of JSON records, and results.dir= or "
                          "results.url=", "is not an argument of `bench import`")
    if not parsed.positional:
        raise ConfigError("", "", "e.g. bench import other-machine/results/records", "no file or folder to import")
    check_record_files(parsed.positional)  # all checked before the store is opened or created
    store = open_store(parsed.results, create=True)
    try:
        files, added, skipped = import_records(store, parsed.positional)
    finally:
        store.close()
    print(f"imported {added} record(s), skipped {skipped} already stored, from {files} "
          f"file(s) into {store.display_url}")
    return 0
