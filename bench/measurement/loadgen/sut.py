"""The system under test that LoadGen drives: ``run_batch`` run on LoadGen's own issuing thread, each
query in batches of at most ``batch_size``, every batch completed before the next (see
bench.measurement.loadgen for why no thread of its own)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from bench.measurement.clock import Clock

__all__ = ["Progress", "PROGRESS_INTERVAL_S", "RUNS_ON"]

# The SUT reports progress at most this often.
PROGRESS_INTERVAL_S = 1.0

# Where run_batch runs, as recorded in the result's "sut".
RUNS_ON = "loadgen_issue_thread"

Progress = Callable[[str, dict[str, Any]], None]


class _BatchingSUT:
    """Runs the samples of each query LoadGen issues, in batches of at most ``batch_size``, before
    ``issue_query`` returns; each batch is completed (QuerySamplesComplete) as soon as it has run.

    LoadGen's documented contract allows this (IssueQuery "may block and signal completion on the
    current stack"), and it issues from the thread that called StartTest: the model runs on the
    thread that built and warmed it, the only Python thread of the run.
    """

    def __init__(self, lg: Any, run_batch: Callable[[int], None], batch_size: int,
                 progress: Progress, clock: Clock) -> None:
        self._lg, self._run_batch, self._batch_size = lg, run_batch, batch_size
        self._progress, self._clock = progress, clock
        self.error: Optional[BaseException] = None
        self.issue_calls = self.samples_issued = self.samples_completed = self.flush_calls = 0
        self.batches = self.largest_batch = 0
        self._started_ns = self._last_progress_ns = 0

    def start(self) -> None:
        self._started_ns = self._last_progress_ns = self._clock()

    def issue_query(self, samples: list[Any]) -> None:
        # Called by LoadGen through its binding: an exception escaping here would abort the process,
        # so run_batch's is kept for run_loadgen to raise once LoadGen has finished.
        ids = [sample.id for sample in samples]
        self.issue_calls += 1
        self.samples_issued += len(ids)
        for first in range(0, len(ids), self._batch_size):
            self._run(ids[first:first + self._batch_size])

    def flush_queries(self) -> None:
        # Nothing is ever held back: every query has completed by the time issue_query returns.
        self.flush_calls += 1

    def _run(self, ids: list[int]) -> None:
        lg = self._lg
        if self.error is None:
            try:
                self._run_batch(len(ids))
            except BaseException as exc:  # noqa: BLE001 - re-raised by run_loadgen once LoadGen returns
                # LoadGen waits for every sample it issued: the rest are completed unrun so that it can end.
                self.error = exc
        # LoadGen stamps the completion here: after run_batch's synchronize, as bench's own engine does.
        lg.QuerySamplesComplete([lg.QuerySampleResponse(i, 0, 0) for i in ids])
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(ids))
        self.samples_completed += len(ids)
        now = self._clock()
        if now - self._last_progress_ns >= PROGRESS_INTERVAL_S * 1e9:
            self._last_progress_ns = now
            self._progress("loadgen", {"samples_completed": self.samples_completed,
                                       "elapsed_s": (now - self._started_ns) / 1e9})

    def stats(self) -> dict[str, int]:
        return {"issue_calls": self.issue_calls, "samples_issued": self.samples_issued,
                "samples_completed": self.samples_completed, "batches": self.batches,
                "largest_batch": self.largest_batch, "flush_calls": self.flush_calls}
