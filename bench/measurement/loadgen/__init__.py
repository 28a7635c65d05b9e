"""MLPerf LoadGen as a measurement engine: the four MLPerf scenarios around one ``run_batch`` callable.

bench's own loop (bench.measurement.loop) times a backend back to back. LoadGen instead plays the traffic of a
scenario (one query at a time, 8-sample queries, Poisson arrivals, or one huge query) and judges the
run against MLPerf's rules; its summary log is the result, parsed here into numbers.

The system under test runs ``run_batch`` on LoadGen's own issuing thread, which is the thread that
called StartTest (``server_num_issue_query_threads`` = 0): ``issue_query`` runs the query's samples
in batches of at most ``batch_size`` and completes each batch as soon as it has run, before it
returns. LoadGen documents this as allowed (IssueQuery "may block and signal completion on the
current stack"), and it keeps the schedule: a query's latency runs from its *scheduled* time to
QuerySamplesComplete (loadgen.cc), so a query issued late because the model was busy counts its wait,
as in bench's own server engine. In Server, the queries that came due meanwhile arrive in one call
(``server_coalesce_queries``, each keeping its scheduled time) and run as one batch; Offline's one
huge query is cut into full batches. The model thus runs on the thread that built and warmed it, and
no second Python thread exists during the run.

Why not a worker thread behind a queue (the first design): LoadGen's Python binding takes the GIL for
every IssueQuery, and an eager PyTorch launch holds the GIL between its kernel launches (hundreds of
short releases per batch), so each arrival handed the GIL over in the middle of a launch, and the
launch waited for it to come back (a thread switch, longer on a busy host). On an NVIDIA H200 (STFPM,
eager CUDA) LoadGen's Server at 300 queries/s reported p50 16.4 ms, p99 38.8 ms (INVALID) where
bench's own engine measured p50 3.9 ms, p99 17.4 ms at 295/s: near saturation a little more service
time per query is a lot more queueing. The mechanism is reproduced on the CPU, where a busy host
magnifies it and a quiet one hides it in the noise (benchmarks/test_loadgen_vs_server.py, figures in
docs/architecture.md); the fix is not yet run on a GPU, so whether it closes all of that gap is open. Measured before that, on a CPU model that releases
the GIL throughout, the thread's hand-off cost less than the machine's noise (SingleStream, 0.5 ms
inference: mean 598-609 us through the thread, 597-604 us run inline).

What LoadGen does that a caller must know:
- Offline issues a single query of max(min_query_count, 1.1 x min_duration x expected qps) samples;
  the run is VALID only if that query takes min_duration, so the expected qps must not be low.
- SingleStream/MultiStream pre-generate 2 x min_duration / expected latency queries (at least
  min_query_count) and stop once min_duration and min_query_count are both met; an expected latency
  that is too high ends the run early (INVALID, "Min duration satisfied : NO"). Each pre-generated
  query costs about 300 bytes: a 0.1 ms model under the 600 s MLPerf preset holds ~12 M (~3.6 GB).
- Early stopping needs enough queries for the target percentile: 64 at the 90th, 662 at the 99th
  (SingleStream/MultiStream); Server needs ~460 at the 99th with no query over the latency bound.
- Without an explicit path, LoadGen reads ``audit.config`` from the current directory (a compliance
  override of the settings) and writes its logs there; both are pointed into ``log_dir``.
"""

from bench.measurement.loadgen.log import parse_detail, parse_summary
from bench.measurement.loadgen.run import INSTALL_HINT, loadgen_available, run_loadgen
from bench.measurement.loadgen.settings import (
    LOADGEN_SCENARIOS,
    MLPERF_RULES,
    MLPERF_SEEDS,
    PRESETS,
    LoadGenSettingError,
    LoadGenSettings,
    apply_preset,
    loadgen_settings_values,
)

__all__ = [
    "LOADGEN_SCENARIOS",
    "INSTALL_HINT",
    "PRESETS",
    "MLPERF_RULES",
    "MLPERF_SEEDS",
    "LoadGenSettingError",
    "LoadGenSettings",
    "loadgen_available",
    "apply_preset",
    "loadgen_settings_values",
    "parse_summary",
    "parse_detail",
    "run_loadgen",
]
