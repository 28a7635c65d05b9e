"""Fake workloads for the runner's isolation tests: each misbehaves in one way a real model can."""

from __future__ import annotations

import ctypes
import os
import time

from bench.suites.base import Suite, Workload


def build_tiny(seed: int):
    import torch

    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))


class _Sleepy:
    """A model with a fixed service time of 4 ms per batch (a sleep), whatever the machine's load:
    the load scenarios' end-to-end tests know its capacity (250 batches per second)."""

    def __new__(cls, seed: int):
        import torch

        class Sleepy(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lin = torch.nn.Linear(16, 4)

            def forward(self, x):
                time.sleep(0.004)
                return self.lin(x)

        return Sleepy()


def build_sleepy(seed: int):
    return _Sleepy(seed)


def build_raises(seed: int):
    raise ValueError("boom from the model builder")


def build_segfault(seed: int):
    ctypes.string_at(0)  # reads address 0: SIGSEGV


def build_hang(seed: int):
    time.sleep(3600)


def build_oom(seed: int):
    return bytearray(1 << 50)  # a pebibyte: the allocation fails with MemoryError


def build_exit(seed: int):
    os._exit(3)


def _w(name: str, builder: str) -> Workload:
    return Workload(name=name, family="fake", builder=f"tests.fakes:{builder}", input_shape=(16,),
                    dataset="none", preprocessing="none", latency_tier_ms=100, licence="n/a", reference="n/a",
                    outputs=("out",), input_norm="normal")


SUITE = Suite(
    name="fake",
    description="fake workloads for tests",
    workloads=(
        _w("tiny", "build_tiny"),
        _w("sleepy", "build_sleepy"),
        _w("raises", "build_raises"),
        _w("segfault", "build_segfault"),
        _w("hang", "build_hang"),
        _w("oom", "build_oom"),
        _w("exit", "build_exit"),
    ),
)


# Backends that fail at given batch sizes, for the sweep's tests. Each is the eager torch backend
# until the batch reaches its threshold.
from bench.backends.torch_eager import TorchBackend  # noqa: E402


class OomFromEightBackend(TorchBackend):
    """Runs out of host memory from batch 8: a real allocation that the allocator refuses."""

    def prepare(self, model, example_inputs, context):
        if example_inputs[0].shape[0] >= 8:
            import torch

            torch.empty(1 << 60, dtype=torch.uint8)  # an exbibyte
        return super().prepare(model, example_inputs, context)


class HangAtFourBackend(TorchBackend):
    def prepare(self, model, example_inputs, context):
        if example_inputs[0].shape[0] == 4:
            time.sleep(3600)
        return super().prepare(model, example_inputs, context)


class SegfaultAtTwoBackend(TorchBackend):
    def prepare(self, model, example_inputs, context):
        if example_inputs[0].shape[0] == 2:
            ctypes.string_at(0)
        return super().prepare(model, example_inputs, context)


# A stateful workload with two inputs, one of them not an image, and two outputs: the suite contract
# for streaming models (bench.suites.base.Workload: state in as an extra input, out as an extra output),
# run end to end by tests/integration/test_suite_contract.py on every backend this CPU has.
STATE = 8


class _Stateful:
    """A camera frame and the previous state in; a score per sample and the new state out."""

    def __new__(cls, seed: int):
        import torch

        class Stateful(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
                self.cell = torch.nn.GRUCell(4, STATE)
                self.head = torch.nn.Linear(STATE, 1)

            def forward(self, frame, state):
                features = self.conv(frame).relu().mean(dim=(2, 3))
                new_state = self.cell(features, state)
                return self.head(new_state).squeeze(1), new_state

        return Stateful()


def build_stateful(seed: int):
    return _Stateful(seed)


def stateful_inputs(batch_size: int, seed: int):
    import torch

    generator = torch.Generator().manual_seed(seed)
    frame = torch.rand((batch_size, 3, 16, 16), generator=generator)
    state = torch.randn((batch_size, STATE), generator=generator)
    return frame, state


STATEFUL_SUITE = Suite(
    name="fake_stateful",
    description="a two-input stateful fake: frame and state in, score and new state out",
    workloads=(Workload(name="stateful", family="fake", builder="tests.fakes:build_stateful", input_shape=(3, 16, 16),
                        dataset="none", preprocessing="none", latency_tier_ms=100, licence="n/a", reference="n/a",
                        outputs=("score", "state"), inputs="tests.fakes:stateful_inputs", task="tracking",
                        domain="test", category="RNN", min_resolution="16x16", dataset_licence="n/a"),),
)


# --- scenario=continual: tiny models the custom suite builds and trains (model.target, model.loss) ---


def build_tiny_conv(seed: int):
    """A tiny convolutional autoencoder on (3, 16, 16) images: (reconstruction, per-image score)."""
    import torch

    class TinyConvAE(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encode = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())
            self.decode = torch.nn.Conv2d(8, 3, 3, padding=1)

        def forward(self, x):
            reconstruction = self.decode(self.encode(x))
            return reconstruction, (reconstruction - x).pow(2).mean(dim=(1, 2, 3))

    torch.manual_seed(seed)
    return TinyConvAE().eval()


def build_tiny_series(seed: int):
    """A tiny recurrent model on (20, 4) windows: the next sample's forecast."""
    import torch

    class TinySeries(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = torch.nn.GRU(4, 8, batch_first=True)
            self.head = torch.nn.Linear(8, 4)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[:, -1])

    torch.manual_seed(seed)
    return TinySeries().eval()


def reconstruction_loss(model, inputs):
    """model.loss of build_tiny_conv: the reconstruction's mean squared error."""
    (x,) = inputs
    reconstruction, _ = model(x)
    return (reconstruction - x).pow(2).mean()


def forecast_loss(model, inputs):
    """model.loss of build_tiny_series: the last sample forecast from the ones before it."""
    (x,) = inputs
    return (model(x[:, :-1]) - x[:, -1]).pow(2).mean()


class WrongAfterAdaptingBackend(TorchBackend):
    """The eager CPU backend, except that a model adapted by scenario=continual (its conversion key
    says so) comes out wrong: its parity check fails, so the served model must stay version 0."""

    def prepare(self, model, example_inputs, context):
        session = super().prepare(model, example_inputs, context)
        if "-adapted-" in context.model_key:
            to_numpy = session.to_numpy
            session.to_numpy = lambda outputs: [array + 1.0 for array in to_numpy(outputs)]
        return session
