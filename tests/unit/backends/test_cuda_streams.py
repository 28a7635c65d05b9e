"""The CUDA stream pool's bookkeeping with a fake torch.cuda: at most one batch per stream, each
completion reported after its event, the outputs held until then, a failure surfaced. (The real
streams have not yet run on a GPU.)"""

from __future__ import annotations

import threading
import time

import pytest

from bench.backends.cuda_streams import CudaStreamPool


class FakeCuda:
    """Streams as names; an event completes 30 ms after it is recorded (the 'GPU' time)."""

    def __init__(self, fail: bool = False) -> None:
        self.lock = threading.Lock()
        self.busy: set = set()
        self.peak = 0
        self.current = None
        self.fail = fail
        self.waits = 0
        cuda = self

        class Stream:
            def __init__(self, device=None):
                self.device = device

            def wait_stream(self, other):
                cuda.waits += 1

        class Event:
            def record(self, stream):
                self.stream = stream
                self.ready = time.monotonic() + 0.03
                with cuda.lock:
                    cuda.busy.add(stream)
                    cuda.peak = max(cuda.peak, len(cuda.busy))

            def synchronize(self):
                time.sleep(max(0.0, self.ready - time.monotonic()))
                with cuda.lock:
                    cuda.busy.discard(self.stream)
                if cuda.fail:
                    raise RuntimeError("device-side assert")

        self.Stream, self.Event = Stream, Event

    def current_stream(self, device):
        return "default"

    def stream(self, stream):
        cuda = self

        class Context:
            def __enter__(self):
                cuda.current = stream

            def __exit__(self, *exc):
                cuda.current = None

        return Context()


def test_batches_run_on_free_streams_and_complete_after_their_event():
    cuda = FakeCuda()
    pool = CudaStreamPool(cuda, "cuda:0", streams=2)
    done, launched_on = [], []
    start = time.monotonic()
    try:
        for i in range(6):
            pool.submit(lambda i=i: launched_on.append(cuda.current) or f"out{i}",
                        lambda i=i: done.append((i, time.monotonic() - start)))
        deadline = time.monotonic() + 5
        while len(done) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        pool.close()
    assert sorted(i for i, _ in done) == list(range(6))
    assert cuda.peak == 2  # never more batches in flight than streams
    assert set(launched_on) == set(pool.streams) and cuda.waits == 6  # each launch waits for the inputs
    assert min(t for _, t in done) >= 0.03  # no completion before its event
    # Six 30 ms batches on two streams: about 90 ms, not the 180 ms of one stream.
    assert max(t for _, t in done) < 0.17


def test_a_failed_batch_is_raised_by_the_next_submit():
    cuda = FakeCuda(fail=True)
    pool = CudaStreamPool(cuda, "cuda:0", streams=1)
    try:
        pool.submit(lambda: None, lambda: None)
        time.sleep(0.1)
        with pytest.raises(RuntimeError, match="device-side assert"):
            pool.submit(lambda: None, lambda: None)
    finally:
        pool.close()


def test_streams_must_be_positive():
    with pytest.raises(ValueError, match="streams=0"):
        CudaStreamPool(FakeCuda(), "cuda:0", streams=0)
