"""Several batches in flight on one GPU, for the load scenarios (server, multistream): a pool of CUDA
streams, each with a thread that waits for its batches to finish.

``submit(run, on_done)`` takes a free stream (waiting for one if all are busy), makes it wait for
the work already queued on the current stream (the inputs), launches ``run()`` on it, records an
event after it, and hands the event to that stream's watcher thread, which waits on the event
(``torch.cuda.Event.synchronize``, which releases the GIL) and then calls ``on_done()``: the batch's
completion time is stamped when the GPU has finished it, not when the launch returned. The outputs
are held until then, so the caching allocator cannot hand their memory to another stream early.

Written to PyTorch's documented stream and event API (torch.cuda.Stream, torch.cuda.stream,
Stream.wait_stream, Event.record, Event.synchronize); not yet run on a GPU. Tested here with a fake
``torch.cuda`` namespace.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

__all__ = ["CudaStreamPool"]


class CudaStreamPool:
    def __init__(self, cuda: Any, device: Any, streams: int) -> None:
        if streams < 1:
            raise ValueError(f"streams={streams} must be >= 1")
        self._cuda = cuda
        self._device = device
        self.streams = [cuda.Stream(device=device) for _ in range(streams)]
        self._free: "queue.Queue[int]" = queue.Queue()
        self._pending: list["queue.Queue[Any]"] = [queue.Queue() for _ in self.streams]
        self._errors: list[BaseException] = []
        self._threads = [threading.Thread(target=self._watch, args=(i,), name=f"cuda-stream-{i}", daemon=True)
                         for i in range(streams)]
        for i, thread in enumerate(self._threads):
            self._free.put(i)
            thread.start()

    def submit(self, run: Callable[[], Any], on_done: Callable[[], None]) -> None:
        if self._errors:
            raise RuntimeError(f"a CUDA stream's batch failed: {self._errors[0]!r}")
        index = self._free.get()  # blocks while every stream has a batch in flight
        stream = self.streams[index]
        stream.wait_stream(self._cuda.current_stream(self._device))
        with self._cuda.stream(stream):
            outputs = run()
            event = self._cuda.Event()
            event.record(stream)
        self._pending[index].put((event, outputs, on_done))

    def _watch(self, index: int) -> None:
        while True:
            item = self._pending[index].get()
            if item is None:
                return
            event, outputs, on_done = item
            try:
                event.synchronize()
                del outputs
                on_done()
            except BaseException as exc:  # noqa: BLE001 - surfaced by the next submit
                self._errors.append(exc)
            finally:
                self._free.put(index)

    def close(self) -> None:
        for pending in self._pending:
            pending.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
