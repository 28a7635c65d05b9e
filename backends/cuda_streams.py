"""Several batches in flight on one GPU, for the load scenarios (server, multistream): a pool of CUDA
streams, each with a thread that waits for its batches to finish.

``submit(run, on_done)`` takes a free stream (waiting for one if all are busy), makes it wait for
the work already queued on the current stream (the inputs), launches ``run()`` on it, records an
event after it, and hands the event to that stream's watcher thread, which waits on the event
(``torch.cuda.Event.synchronize``, which releases the GIL) and then calls ``on_done()``: the batch's
completion time is stamped when the GPU has finished it, not when the launch returned. The outputs
are held until then, so the caching allocator cannot hand their memory to another stream early.

Failures: a stream is handed back whatever fails. When the launch fails in ``submit`` (``run()``,
the wait, the event's creation or record raising), its stream is freed at once and the error is
raised to the caller, which may submit again. When a batch fails in its watcher (the event's wait,
``on_done``), its stream is freed too, and every later ``submit`` raises that error: CUDA's errors
from a kernel are sticky (the context is unusable afterwards), and a broken completion callback
would leave the load driver's bookkeeping wrong. ``close()`` lets the batches in flight complete,
then ends every watcher thread; it is idempotent, and ``submit`` after it raises. A watcher's
failure is kept in ``error`` for a caller that submits nothing more (the failed batch never calls its
``on_done``, so the load driver only sees it as unfinished).

Written to PyTorch's documented stream and event API (torch.cuda.Stream, torch.cuda.stream,
Stream.wait_stream, Event.record, Event.synchronize); not yet run on a GPU. Tested here with a fake
``torch.cuda`` namespace.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

__all__ = ["CudaStreamPool"]

# How long close() waits for each watcher; a watcher can outlive it only while a GPU that hangs keeps
# its Event.synchronize from returning (the threads are daemons: they never keep the worker alive).
_CLOSE_TIMEOUT_S = 10.0


class CudaStreamPool:
    """``streams`` CUDA streams, at most one batch in flight on each; see the module's docstring."""

    def __init__(self, cuda: Any, device: Any, streams: int) -> None:
        if streams < 1:
            raise ValueError(f"streams={streams} must be >= 1")
        self._cuda = cuda
        self._device = device
        self.streams = [cuda.Stream(device=device) for _ in range(streams)]
        # One condition guards the free streams, the watchers' error and the closed flag, so that a
        # submit waiting for a stream wakes on whichever comes first.
        self._cond = threading.Condition()
        self._free: list[int] = list(range(streams))
        self._error: BaseException | None = None
        self._closed = False
        self._pending: list["queue.Queue[Any]"] = [queue.Queue() for _ in self.streams]
        self._threads = [threading.Thread(target=self._watch, args=(i,), name=f"cuda-stream-{i}", daemon=True)
                         for i in range(streams)]
        for thread in self._threads:
            thread.start()

    @property
    def free(self) -> int:
        """How many streams have no batch in flight."""
        with self._cond:
            return len(self._free)

    def submit(self, run: Callable[[], Any], on_done: Callable[[], None]) -> None:
        """Launch ``run()`` on a free stream (blocking while none is); ``on_done()`` is called from the
        stream's watcher once the GPU has finished it. Raises what the launch raised (its stream is
        freed), a watcher's earlier failure, or RuntimeError once the pool is closed."""
        index = self._acquire()
        handed_over = False
        try:
            stream = self.streams[index]
            stream.wait_stream(self._cuda.current_stream(self._device))
            with self._cuda.stream(stream):
                outputs = run()
                event = self._cuda.Event()
                event.record(stream)
            with self._cond:
                # Under the lock that close() takes, so that no batch lands behind a watcher's stop.
                if self._closed:
                    raise RuntimeError("the CUDA stream pool was closed while a batch was launched")
                self._pending[index].put((event, outputs, on_done))
                handed_over = True
        finally:
            if not handed_over:
                self._release(index)

    def _acquire(self) -> int:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the CUDA stream pool is closed")
                if self._error is not None:
                    raise RuntimeError(f"a CUDA stream's batch failed: {self._error!r}") from self._error
                if self._free:
                    return self._free.pop(0)
                self._cond.wait()  # every stream has a batch in flight

    def _release(self, index: int) -> None:
        with self._cond:
            self._free.append(index)
            self._cond.notify_all()

    def _watch(self, index: int) -> None:
        pending = self._pending[index]
        while True:
            item = pending.get()
            if item is None:
                return
            try:
                event, _outputs, on_done = item
                event.synchronize()
                # The outputs die here, after the GPU has finished writing them (item holds them too).
                del item, _outputs
                on_done()
            except BaseException as exc:  # noqa: BLE001 - raised by every later submit
                with self._cond:
                    if self._error is None:
                        self._error = exc
            finally:
                item = None
                self._release(index)

    def close(self) -> None:
        """Let the batches in flight complete, then end the watcher threads. Idempotent."""
        with self._cond:
            first = not self._closed
            self._closed = True
            self._cond.notify_all()  # a submit waiting for a stream raises instead
            if first:
                for pending in self._pending:
                    pending.put(None)  # behind any batch already handed over
        for thread in self._threads:
            thread.join(timeout=_CLOSE_TIMEOUT_S)

    @property
    def error(self) -> BaseException | None:
        """The first failure seen by a watcher, or None. A batch that failed never calls its on_done,
        so a caller that submits nothing more learns of it only here (TorchSession.close raises it)."""
        with self._cond:
            return self._error

    @property
    def alive(self) -> list[threading.Thread]:
        """The watcher threads still running (none after close(), unless a GPU hangs)."""
        return [thread for thread in self._threads if thread.is_alive()]
