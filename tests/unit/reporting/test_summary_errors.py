"""A failed item's cell in the summary says what went wrong in a few words: PyTorch's refused CPU
allocation is an out-of-memory (kind oom, on the worker's own exception) and reads as one, and a
message's brackets are shown, not taken for markup."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from bench.reporting.summary import short_error, summary
from bench.worker.process import classify_exception
from tests.recordfactory import make_record

TORCH_CPU_OOM = ("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you "
                 "tried to allocate 123 bytes. Error code 12 (Cannot allocate memory)")


class BackendError(Exception):
    pass


def test_a_refused_allocation_is_an_out_of_memory():
    assert classify_exception(RuntimeError(TORCH_CPU_OOM)) == "oom"
    assert classify_exception(MemoryError()) == "oom"
    assert classify_exception(RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB")) == "oom"
    assert classify_exception(RuntimeError("std::bad_alloc")) == "oom"
    assert classify_exception(ValueError("boom from the model builder")) == "exception"
    # A backend that re-raises it as its own error (raise ... from): still the allocation's failure.
    try:
        try:
            raise RuntimeError(TORCH_CPU_OOM)
        except RuntimeError as exc:
            raise BackendError("engine build failed") from exc
    except BackendError as wrapped:
        assert classify_exception(wrapped) == "oom"
    # An error raised while handling one (a fallback that failed for its own reason) is that reason.
    try:
        try:
            raise MemoryError()
        except MemoryError:
            raise BackendError("the fallback has no such operator")
    except BackendError as other:
        assert classify_exception(other) == "exception"


@pytest.mark.parametrize("error, cell", [
    ({"kind": "oom", "message": f"RuntimeError: {TORCH_CPU_OOM}"}, "out of memory: can't allocate 123 bytes"),
    ({"kind": "oom", "message": f"RuntimeError: {TORCH_CPU_OOM.replace('123', str(1 << 60))}"},
     "out of memory: can't allocate 1 EiB"),
    ({"kind": "oom", "message": "OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; ...)"},
     "out of memory: can't allocate 20.00 MiB on the GPU"),
    ({"kind": "oom", "message": "MemoryError"}, "MemoryError"),
    ({"kind": "exception", "message": "RuntimeError: [enforce fail at conv.cpp:9] ndim == 4. expected a 4-d input"},
     "RuntimeError: expected a 4-d input"),
    ({"kind": "timeout", "message": "no result within worker.timeout_s=12 s: worker killed"},
     "no result within worker.timeout_s=12 s: worker killed"),
    ({"kind": "crash", "message": "worker killed by SIGKILL; " + "x" * 80}, "worker killed by SIGKILL; " + "x" * 33 + "…"),
])
def test_the_cell_keeps_the_meaning(error, cell):
    assert short_error(error) == cell and len(short_error(error)) <= 60


def test_the_summary_shows_the_allocation_failure_and_the_brackets():
    record = make_record(status="oom")
    record = replace(record, error={"kind": "oom", "message": f"RuntimeError: {TORCH_CPU_OOM}"})
    crash = replace(make_record(status="failed"),
                    error={"kind": "exception", "message": "ValueError: [bad] value"})
    out = io.StringIO()
    summary([(record, Path("results/records/x.json")), (crash, Path("results/records/y.json"))], "sqlite:///x",
            stream=out)
    text = out.getvalue()
    assert "out of memory: can't allocate 123 bytes" in text
    assert "RuntimeError:  err == 0." not in text
    assert "ValueError: [bad] value" in text  # in the table's cell and in the error line below it
    assert text.count("[bad]") == 2
    assert f"error [1] oom: RuntimeError: {TORCH_CPU_OOM}" in text  # the whole message below the table
