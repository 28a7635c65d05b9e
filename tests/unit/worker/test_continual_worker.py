"""scenario=continual's serving side, the parts that need no process: whether trainer and server share
a device, which modules can be saved whole, and the pools cut into batches."""

from __future__ import annotations

import numpy as np
import pytest

from bench.worker.continual import _batches, _importable, _same_device


@pytest.mark.parametrize("train, serve, shared", [
    ("cpu", "cpu", True), ("cpu", "CPU", True),  # OpenVINO names the CPU in capitals
    ("cpu", "cuda", False), ("cuda", "cpu", False),
    ("cuda", "cuda:0", True), ("cuda:1", "cuda:1", True), ("cuda:1", "cuda:0", False),
    ("cuda", "GPU.0", False),  # OpenVINO's GPU is an Intel GPU
])
def test_same_device(train, serve, shared):
    assert _same_device(train, serve) is shared


def test_a_class_defined_in_a_function_is_not_importable():
    class Local:
        pass

    assert _importable(np.ndarray) and not _importable(Local)


def test_pools_are_cut_into_whole_batches():
    pool = np.arange(10)
    assert [b.tolist() for b in _batches(pool, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(_batches(pool, 1)) == 10
