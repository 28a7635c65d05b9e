"""The Python API: what `bench run`, `bench leaderboard` and `bench compare` do, from a script or a
notebook, returning objects rather than printing.

    import bench

    records = bench.run(["suite.only=[padim]", "scenario=throughput", "batch_size=8", "tag=try"])
    board = bench.leaderboard(workload="padim")          # the ranked tables, as `bench leaderboard`
    board.to_frame()                                      # one row per ranked row (pandas)
    result = bench.compare({"tag": "before"}, {"tag": "after"}, fail_on="throughput:5%")
    result.verdict.exit_code                              # what `bench compare` would exit with
    frame = bench.results.load("results", workload="padim")   # every record, every scalar metric

Selections are keyword arguments (or a mapping) of the selection keys `bench` commands take as
KEY=VALUE (bench.results.store.FILTER_COLUMNS), each a value or a list of values (any of them). The store
is ``results_dir`` (JSON files and SQLite) and, when given, ``results_url`` (a database URL). Bad
input raises bench.errors.ConfigError, whose message is the command line's one line.
"""

from __future__ import annotations

import dataclasses
import io
from contextlib import nullcontext, redirect_stdout
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from bench import results
from bench.errors import BenchError, ConfigError
from bench.reporting import leaderboard as _lb
from bench.results.records import RunRecord

if TYPE_CHECKING:
    from bench.reporting.compare import CompareResult

__all__ = ["run", "leaderboard", "compare", "results", "RunRecord", "RunFailed", "Leaderboard"]


@dataclasses.dataclass
class Leaderboard(_lb.Leaderboard):
    """bench.reporting.leaderboard.Leaderboard (groups of ranked rows, notes) and ``to_frame()``."""

    def to_frame(self) -> Any:
        """The tables as one pandas DataFrame, a row per ranked row: the columns of `bench leaderboard
        --format csv`, numbers as numbers (an interval's missing end is NaN; its ``<metric>_note`` says why)."""
        from bench.reporting.leaderboard_render import to_frame

        return to_frame(self)


class RunFailed(BenchError):
    """`bench.run` could not run (an error it printed as `bench: error: ...`), with that line's text."""


def run(overrides: Sequence[str] = (), *, config_dir: Optional[str] = None, quiet: bool = False) -> list[RunRecord]:
    """Measure, as `bench run OVERRIDES...` does (Hydra overrides, ``-m`` for a multirun), in this
    process; the records written, in the order they were measured. Progress goes to stderr, and the
    summary table to stdout unless ``quiet``. A work item that failed is a record with status failed
    (as the command line's exit code 1); bad overrides raise ConfigError, and a run that cannot start
    (the store refuses, another measurement holds the machine) RunFailed, with the reason."""
    from bench.cli.run import RunContext, _LastError, _run_command, masked_output
    import sys

    args = [*(["--config-dir", str(config_dir)] if config_dir else []), *map(str, overrides)]
    if "--json" in args or "--version" in args:
        raise ConfigError("--json" if "--json" in args else "--version", None,
                          "leave it out: bench.run returns the records", "is a command line flag")
    seen: list[RunContext] = []
    errors = _LastError(sys.stderr)
    saved = sys.stderr
    sys.stderr = errors
    try:
        with masked_output(), redirect_stdout(io.StringIO()) if quiet else nullcontext():
            code = _run_command(args, seen)
    except SystemExit as exc:  # a job's usage error (bench: error: ... then exit 2)
        code = exc.code if isinstance(exc.code, int) else 1
        if not (seen and seen[0].results):
            raise (ConfigError("", "", errors.last, "bench.run") if code == 2 else RunFailed(errors.last)) from None
    finally:
        sys.stderr = saved
    if code == 2 and not (seen and seen[0].results):
        raise ConfigError("", "", errors.last or "see the message above", "bench.run")
    if code not in (0, 1) and not (seen and seen[0].results):
        raise RunFailed(errors.last or f"bench run ended with exit code {code}")
    return [record for record, _ in seen[0].results] if seen else []


def _selection(selection: Optional[Mapping[str, Any]], filters: Mapping[str, Any]) -> Any:
    from bench.results.query import Selection

    return Selection.of({**(selection or {}), **filters})


def _open(results_dir: str, results_url: Optional[str]) -> Any:
    from pathlib import Path

    from bench.results.store import ResultsStore

    store = ResultsStore(str(Path(results_dir).expanduser()), results_url, create=False)
    store.engine  # noqa: B018 - open now: a bad URL is a ConfigError/StoreError here
    return store


def leaderboard(selection: Optional[Mapping[str, Any]] = None, *, results_dir: str = "results",
                results_url: Optional[str] = None, metric: Optional[str] = None, newest: bool = False,
                prices: Optional[str] = None, **filters: Any) -> Leaderboard:
    """The leaderboard of the selected records, as `bench leaderboard` ranks it: per suite x workload x
    scenario x batch, one row per hardware x backend x precision (the best-supported record, or with
    ``newest`` the newest), ranked by ``metric`` (the scenario's default otherwise), ties where 95%
    intervals overlap. ``prices``: a price file or folder (conf/hardware by default). The returned
    Leaderboard has ``groups`` (each with ``rows``), ``notes``, and ``to_frame()``."""
    from pathlib import Path

    from bench.reporting import leaderboard as lb
    from bench.results.query import choices, shown_records

    if metric is not None:
        lb.check_metric(metric)
    table_prices = lb.load_prices(Path(prices).expanduser() if prices else None)
    chosen = _selection(selection, filters)
    store = _open(results_dir, results_url)
    try:
        board = lb.build_indexed(choices(store, chosen), shown_records(store), metric, table_prices,
                                 source=store.display_url, selection=str(chosen), newest=newest)
    finally:
        store.close()
    return Leaderboard(**{f.name: getattr(board, f.name) for f in dataclasses.fields(board)})


def compare(baseline: Mapping[str, Any], candidate: Mapping[str, Any], selection: Optional[Mapping[str, Any]] = None,
            *, results_dir: str = "results", results_url: Optional[str] = None, fail_on: Optional[str] = None,
            seed: int = 0, resamples: Optional[int] = None, **filters: Any) -> CompareResult:
    """candidate / baseline per matched workload, as `bench compare` gives it: ``baseline`` and
    ``candidate`` are selections (e.g. {"tag": "before"}), the other selection keys apply to both. Each
    ratio has its 95% interval (between processes where both records hold repeats, else a bootstrap).
    ``fail_on`` ("throughput:5%,latency_p99:10%") is checked into ``result.verdict`` (failures,
    inconclusive comparisons, and the exit code the command line would give)."""
    from bench.reporting import compare as cmp
    from bench.results.query import index

    rules = cmp.parse_fail_on(fail_on) if fail_on else []
    common = _selection(selection, filters)
    base_sel, cand_sel = _selection(baseline, {}) + common, _selection(candidate, {}) + common
    differing = base_sel.differing(cand_sel)
    store = _open(results_dir, results_url)
    try:
        result = cmp.compare_indexed(index(store, base_sel, "baseline"), index(store, cand_sel, "candidate"),
                                     store.records, differing, seed=seed,
                                     resamples=cmp.RESAMPLES if resamples is None else resamples)
    finally:
        store.close()
    result.verdict = cmp.check(result, rules)
    return result
