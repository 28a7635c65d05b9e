"""The system under test that LoadGen drives: one worker thread in front of ``run_batch`` (see
bench.measurement.loadgen for why one thread and why it never waits for a fuller batch)."""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable, Optional

from bench.measurement.clock import Clock

__all__ = ["Progress", "PROGRESS_INTERVAL_S"]

# The worker reports progress at most this often.
PROGRESS_INTERVAL_S = 1.0

Progress = Callable[[str, dict[str, Any]], None]


class _BatchingSUT:
    """Queues LoadGen's samples; one worker thread runs them in batches of at most ``batch_size``."""

    def __init__(self, lg: Any, run_batch: Callable[[int], None], batch_size: int,
                 progress: Progress, clock: Clock) -> None:
        self._lg, self._run_batch, self._batch_size = lg, run_batch, batch_size
        self._progress, self._clock = progress, clock
        self._queue: collections.deque[int] = collections.deque()  # response ids
        self._cv = threading.Condition()
        self._stopping = False
        self.error: Optional[BaseException] = None
        self.issue_calls = self.samples_issued = self.samples_completed = self.flush_calls = 0
        self.batches = self.largest_batch = 0
        self._thread = threading.Thread(target=self._work, name="loadgen-sut", daemon=True)

    def start(self) -> None:
        self._started_ns = self._last_progress_ns = self._clock()
        self._thread.start()

    def issue_query(self, samples: list[Any]) -> None:
        # Runs on LoadGen's thread: anything raised here would abort the process, so it only queues.
        ids = [sample.id for sample in samples]
        with self._cv:
            self.issue_calls += 1
            self.samples_issued += len(ids)
            self._queue.extend(ids)
            self._cv.notify()

    def flush_queries(self) -> None:
        # Nothing is held back for a fuller batch; wake the worker in case it sleeps.
        with self._cv:
            self.flush_calls += 1
            self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join()

    def _work(self) -> None:
        lg = self._lg
        while True:
            with self._cv:
                while not self._queue and not self._stopping:
                    self._cv.wait()
                if not self._queue:
                    return
                take = min(len(self._queue), self._batch_size)
                ids = [self._queue.popleft() for _ in range(take)]
            if self.error is None:
                try:
                    self._run_batch(take)
                except BaseException as exc:  # noqa: BLE001 - re-raised by run_loadgen once LoadGen returns
                    # LoadGen waits for every sample it issued: complete the rest unrun so it can end.
                    self.error = exc
            lg.QuerySamplesComplete([lg.QuerySampleResponse(i, 0, 0) for i in ids])
            self.batches += 1
            self.largest_batch = max(self.largest_batch, take)
            self.samples_completed += take
            now = self._clock()
            if now - self._last_progress_ns >= PROGRESS_INTERVAL_S * 1e9:
                self._last_progress_ns = now
                self._progress("loadgen", {"samples_completed": self.samples_completed,
                                           "elapsed_s": (now - self._started_ns) / 1e9})

    def stats(self) -> dict[str, int]:
        return {"issue_calls": self.issue_calls, "samples_issued": self.samples_issued,
                "samples_completed": self.samples_completed, "batches": self.batches,
                "largest_batch": self.largest_batch, "flush_calls": self.flush_calls}
