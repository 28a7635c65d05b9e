"""Load scenarios: requests arrive on their own schedule, wait in a queue and are served by the
backend; latency runs from a request's arrival to its completion, queueing included.

- ``server``: arrivals are a Poisson process at ``rate_qps`` (exponential inter-arrival times), one
  sample per request, as in MLPerf's Server scenario.
- ``multistream``: N camera streams, each periodic at ``fps`` with a random phase; one frame per
  request.

The schedule is drawn before the run (``arrivals``), so a request's arrival time is known exactly,
not observed. One dispatcher (``dispatch``) serves it, for synchronous sessions (``serve``) and
asynchronous ones (``serve_async``); ``summary`` turns a probe into latency statistics. Searches
(``search``: ``find_peak`` for the server rate, ``find_streams`` for the stream count) bisect between
a value that meets the latency requirement and one that does not, with the same unit-rate random
arrival sequence at every rate (common random numbers: a probe's verdict differs between rates
because of the rate, not the draw).
"""

from bench.measurement.clock import Clock, RealClock
from bench.measurement.load.arrivals import PoissonSource, poisson_arrivals, stream_arrivals
from bench.measurement.load.dispatch import LoadSettings, ServeResult, dispatch, serve, serve_async
from bench.measurement.load.search import SearchResult, find_peak, find_streams, meets
from bench.measurement.load.summary import LOAD_PERCENTILES, latency_summary

__all__ = ["Clock", "RealClock", "LoadSettings", "ServeResult", "poisson_arrivals", "PoissonSource",
           "stream_arrivals", "dispatch", "serve", "serve_async", "latency_summary", "meets", "SearchResult",
           "find_peak", "find_streams", "LOAD_PERCENTILES"]
