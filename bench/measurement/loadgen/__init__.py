"""MLPerf LoadGen as a measurement engine: the four MLPerf scenarios around one ``run_batch`` callable.

bench's own loop (bench.measurement.loop) times a backend back to back. LoadGen instead plays the traffic of a
scenario (one query at a time, 8-sample queries, Poisson arrivals, or one huge query) and judges the
run against MLPerf's rules; its summary log is the result, parsed here into numbers.

The system under test is one worker thread in front of ``run_batch``. Every scenario goes through it:
``issue_query`` only queues the samples and returns, so LoadGen's issuing thread is never held by an
inference (in Server it must keep to its arrival schedule), and the worker takes whatever is queued,
up to ``batch_size`` samples, as one call (a Server burst is batched; Offline's one huge query is cut
into full batches). It never waits for a fuller batch, so ``flush_queries`` has nothing to release.
One thread, not a pool, because ``run_batch`` is one model on one device: concurrent calls would only
contend for it, and the caller's padded input buffer need not be thread-safe. Measured here, the
hand-off to the thread costs less than this machine's noise (SingleStream, 0.5 ms inference: mean
598-609 us through the thread, 597-604 us run inline in ``issue_query``).

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
