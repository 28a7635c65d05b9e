"""The CUDA stream pool's bookkeeping with a fake torch.cuda: at most one batch per stream, each
completion reported after its event, the outputs held until then, a failure surfaced, a stream
handed back whatever fails, and no watcher thread left after close(). (The real streams have not
yet run on a GPU.)

Every call that could block runs in a thread joined with a timeout (``_within``): a pool that
leaks its streams fails these tests instead of hanging them."""

from __future__ import annotations

import threading
import time

import pytest

from bench.backends.cuda_streams import CudaStreamPool


class FakeCuda:
    """Streams as names; an event completes ``gpu_s`` (30 ms) after it is recorded (the 'GPU' time)."""

    def __init__(self, fail: bool = False, fail_event: str = "", gpu_s: float = 0.03) -> None:
        self.lock = threading.Lock()
        self.busy: set = set()
        self.peak = 0
        self.current = None
        self.fail = fail
        self.fail_event = fail_event  # "create" or "record": that step raises (while set)
        self.waits = 0
        cuda = self

        class Stream:
            def __init__(self, device=None):
                self.device = device

            def wait_stream(self, other):
                cuda.waits += 1

        class Event:
            def __init__(self):
                if cuda.fail_event == "create":
                    raise RuntimeError("CUDA error: out of memory (event)")

            def record(self, stream):
                if cuda.fail_event == "record":
                    raise RuntimeError("CUDA error: invalid resource handle (record)")
                self.stream = stream
                self.ready = time.monotonic() + gpu_s
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
    # That the two streams overlapped is shown by the peak above, not by a duration (no wall-clock
    # speed is asserted: this machine may be loaded).


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


def _within(fn, timeout_s: float = 5.0):
    """fn() in a thread: its result, or its exception re-raised; a test failure (not a hang) if it
    has not returned within timeout_s."""
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), f"blocked for more than {timeout_s} s (a stream was not handed back)"
    if "error" in box:
        raise box["error"]
    return box.get("result")


def _completes(pool, cuda):
    """A good batch after the failures: it runs and its completion is reported."""
    done = threading.Event()
    _within(lambda: pool.submit(lambda: "out", done.set))
    assert done.wait(5), "the good batch was never completed"


def _raise(message):
    raise RuntimeError(message)


@pytest.mark.parametrize("streams", [1, 2])
def test_a_run_that_raises_hands_its_stream_back(streams):
    """run() raising N+1 times on an N-stream pool: each submit raises that error (none blocks), and a
    good batch then runs."""
    cuda = FakeCuda()
    pool = CudaStreamPool(cuda, "cuda:0", streams=streams)
    try:
        for attempt in range(streams + 1):
            with pytest.raises(RuntimeError, match=f"launch failed {attempt}"):
                _within(lambda: pool.submit(lambda: _raise(f"launch failed {attempt}"), lambda: None))
            assert pool.free == streams
        _completes(pool, cuda)
    finally:
        pool.close()
    assert pool.alive == []


@pytest.mark.parametrize("step", ["create", "record"])
def test_an_event_that_fails_hands_its_stream_back(step):
    cuda = FakeCuda(fail_event=step)
    pool = CudaStreamPool(cuda, "cuda:0", streams=2)
    try:
        for _ in range(3):
            with pytest.raises(RuntimeError, match=f"CUDA error: .*{'event' if step == 'create' else 'record'}"):
                _within(lambda: pool.submit(lambda: "out", lambda: None))
        assert pool.free == 2
        cuda.fail_event = ""
        _completes(pool, cuda)
    finally:
        pool.close()
    assert pool.alive == []


def test_a_failure_in_the_watcher_frees_its_stream_and_is_raised_by_every_later_submit():
    """A batch that fails on the 'GPU' (or whose on_done raises): its stream is freed, and each later
    submit raises instead of waiting (CUDA's kernel errors leave the context unusable)."""
    cuda = FakeCuda(fail=True)
    pool = CudaStreamPool(cuda, "cuda:0", streams=1)
    try:
        _within(lambda: pool.submit(lambda: "out", lambda: None))
        deadline = time.monotonic() + 5
        while pool.free < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.free == 1
        for _ in range(2):
            with pytest.raises(RuntimeError, match="device-side assert"):
                _within(lambda: pool.submit(lambda: "out", lambda: None))
    finally:
        pool.close()
    assert pool.alive == []

    callback = CudaStreamPool(FakeCuda(), "cuda:0", streams=1)
    try:
        _within(lambda: callback.submit(lambda: "out", lambda: _raise("on_done broke")))
        with pytest.raises(RuntimeError, match="on_done broke"):
            _within(lambda: callback.submit(lambda: "out", lambda: None))
    finally:
        callback.close()
    assert callback.alive == []


def _watchers(pool):
    return [t for t in threading.enumerate() if t in pool._threads]


def test_close_completes_the_batches_in_flight_then_ends_every_watcher_and_is_idempotent():
    cuda = FakeCuda()
    pool = CudaStreamPool(cuda, "cuda:0", streams=3)
    assert len(_watchers(pool)) == 3
    done = []
    for i in range(3):
        _within(lambda i=i: pool.submit(lambda: f"out{i}", lambda i=i: done.append(i)))
    _within(pool.close)
    assert sorted(done) == [0, 1, 2]  # nothing in flight is lost by closing
    assert _watchers(pool) == [] and pool.alive == []
    _within(pool.close)  # a second close is a no-op
    with pytest.raises(RuntimeError, match="closed"):
        _within(lambda: pool.submit(lambda: "out", lambda: None))


def test_close_after_failures_ends_every_watcher():
    cuda = FakeCuda(fail=True)
    pool = CudaStreamPool(cuda, "cuda:0", streams=2)
    with pytest.raises(RuntimeError, match="launch"):
        _within(lambda: pool.submit(lambda: _raise("launch"), lambda: None))
    for _ in range(2):  # both fail in their watchers
        _within(lambda: pool.submit(lambda: "out", lambda: None))
    _within(pool.close)
    assert _watchers(pool) == []


def test_a_submit_waiting_for_a_stream_is_woken_by_close():
    """Every stream busy (a batch whose event never completes until released): a submit waiting for
    a stream raises when the pool is closed instead of waiting for ever."""
    cuda = FakeCuda()
    release = threading.Event()

    class SlowEvent(cuda.Event):
        def synchronize(self):
            release.wait(5)

    cuda.Event = SlowEvent
    pool = CudaStreamPool(cuda, "cuda:0", streams=1)
    _within(lambda: pool.submit(lambda: "out", lambda: None))
    box: dict = {}

    def waiting():
        try:
            pool.submit(lambda: "out", lambda: None)
        except RuntimeError as exc:
            box["error"] = exc

    waiter = threading.Thread(target=waiting, daemon=True)
    waiter.start()
    time.sleep(0.05)
    closer = threading.Thread(target=pool.close, daemon=True)
    closer.start()
    waiter.join(5)
    assert not waiter.is_alive() and "closed" in str(box.get("error"))
    release.set()
    closer.join(5)
    assert not closer.is_alive() and pool.alive == []


SERVER = ["suite=fake", "suite.only=[tiny]", "backend=cpu", "scenario=server", "scenario.rate_qps=400",
          "scenario.min_duration_s=0.05", "scenario.max_duration_s=1", "scenario.slo_ms=1000",
          "scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "sensors.enabled=false"]


def _serve_in_this_process(tmp_path, monkeypatch, cuda):
    """The worker's run_item, in this process, on the server scenario, with the session's batches
    served through a 2-stream pool on ``cuda`` (a fake): the pools it made, and its result or error."""
    torch = pytest.importorskip("torch")  # noqa: F841 - the worker builds a torch model
    import bench.backends.cuda_streams as cuda_streams
    from bench.backends.torch_eager import TorchBackend
    from bench.config.compose import compose, to_config
    from bench.orchestration.protocol import ItemRequest, decode
    from bench.worker.process import run_item
    from tests.conftest import ROOT

    pools = []

    def fake_pool(_cuda, device, streams):
        pools.append(CudaStreamPool(cuda, device, streams))
        return pools[-1]

    real_prepare = TorchBackend.prepare

    def prepare_with_streams(self, model, example_inputs, context):
        session = real_prepare(self, model, example_inputs, context)
        session.use_streams(2)  # what backend.streams=2 does on a CUDA device
        return session

    monkeypatch.setattr(cuda_streams, "CudaStreamPool", fake_pool)
    monkeypatch.setattr(TorchBackend, "prepare", prepare_with_streams)
    cfg = to_config(compose([*SERVER, f"results.dir={tmp_path / 'results'}"], config_dirs=[str(ROOT / "tests" / "conf")]))
    item = decode(ItemRequest.from_config(cfg, "tiny", 1, "run1").to_wire())
    try:
        return pools, run_item(item, lambda message: None), None
    except Exception as exc:  # noqa: BLE001 - handed to the test
        return pools, None, exc


def test_the_worker_serves_through_the_pool_and_closes_it(tmp_path, monkeypatch):
    cuda = FakeCuda(gpu_s=0.002)
    pools, result, error = _serve_in_this_process(tmp_path, monkeypatch, cuda)
    assert error is None, error
    (pool,) = pools
    served = result["load"]["result"]
    assert served["extra"]["in_flight_limit"] == 2 and served["dropped"] == 0 and len(served["latencies_ns"]) > 0
    assert cuda.peak == 2  # two batches were in flight at once
    # The session was closed when the item ended: no watcher thread is left in this process.
    assert pool.alive == [] and _watchers(pool) == []


def test_the_worker_closes_the_pool_when_a_batch_fails(tmp_path, monkeypatch):
    pools, result, error = _serve_in_this_process(tmp_path, monkeypatch, FakeCuda(fail=True, gpu_s=0.002))
    assert result is None and "device-side assert" in str(error)
    (pool,) = pools
    assert pool.alive == [] and _watchers(pool) == []


def test_the_session_raises_at_close_what_failed_on_a_stream_unseen(monkeypatch):
    """A batch that fails on its stream never completes; when nothing more is submitted (the load
    driver waits for it until its drain limit), TorchSession.close() ends the watchers and raises it."""
    torch = pytest.importorskip("torch")
    import bench.backends.cuda_streams as cuda_streams
    from bench.backends.torch_eager import TorchSession

    pools = []
    monkeypatch.setattr(cuda_streams, "CudaStreamPool",
                        lambda _cuda, device, streams: pools.append(CudaStreamPool(FakeCuda(fail=True, gpu_s=0.001),
                                                                                   device, streams)) or pools[-1])
    session = TorchSession(torch.nn.Identity(), torch.device("cpu"), torch.float32, channels_last=False)
    session.use_streams(2)
    assert session.in_flight == 2
    done = []
    _within(lambda: session.submit((torch.ones(2),), lambda: done.append(1)))
    deadline = time.monotonic() + 5
    while pools[0].error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    for _ in range(2):  # and again: close stays safe to call
        with pytest.raises(RuntimeError, match="a batch on a CUDA stream failed: .*device-side assert"):
            _within(session.close)
    assert done == [] and pools[0].alive == [] and _watchers(pools[0]) == []
