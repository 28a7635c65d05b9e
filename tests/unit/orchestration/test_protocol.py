"""The parent-worker protocol: every message survives the wire as it was, a message of another
version or with a field missing or unknown is refused naming it, and the item is built from the
typed config with the sweep's largest batch as max_batch_size."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bench.config.compose import compose, to_config
from bench.config.schema import OrtBackendConfig, ServerScenarioConfig
from bench.orchestration.protocol import (
    PROTOCOL_VERSION, Error, ItemRequest, Progress, ProtocolError, Result, decode, default_cache_dir,
)
from bench.orchestration.runner import Runner, WorkItem
from bench.orchestration.sweep import sweep_batches


def config(tmp_path, *extra: str):
    return to_config(compose(["backend=onnxruntime", f"results.dir={tmp_path / 'results'}", *extra]))


def item(tmp_path, *extra: str, batch: int = 4) -> ItemRequest:
    return ItemRequest.from_config(config(tmp_path, *extra), "autoencoder", batch, "run1")


def test_every_message_round_trips(tmp_path):
    request = item(tmp_path, "scenario=server", "scenario.rate_qps=25", "cache.dir=/tmp/c")
    back = decode(request.to_wire())
    assert back == request
    # Config sections come back as their own schema classes, typed, defaults included.
    assert type(back.backend) is OrtBackendConfig and back.backend.provider == "cpu"
    assert type(back.scenario) is ServerScenarioConfig and back.scenario.rate_qps == 25.0
    assert back.scenario.loadgen == request.scenario.loadgen and back.cache.dir == "/tmp/c"
    for message in (Progress("measure", {"iterations": 3, "rel_ci": None}),
                    Result({"workload": {"batch_size": 4}, "loop": {"samples_ns": [1, 2]}}),
                    Error("oom", "MemoryError: x", "Traceback ..."), Error("exception", "boom")):
        line = message.to_wire()
        assert "\n" not in line and json.loads(line)["v"] == PROTOCOL_VERSION
        assert decode(line) == message and decode(line.encode()) == message
    assert Progress.from_wire(Progress("build", {}).to_wire()) == Progress("build", {})


def test_the_item_is_the_typed_config_with_resolved_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cfg = config(tmp_path)
    request = ItemRequest.from_config(cfg, "autoencoder", 2, "run1")
    assert request.backend == cfg.backend and request.scenario == cfg.scenario and request.suite == cfg.suite
    assert request.cache.dir == default_cache_dir() == str(tmp_path / "xdg" / "bench" / "artifacts")
    assert request.suite_options["dataset"] == cfg.suite.dataset
    assert request.loadgen_log_dir.endswith("loadgen/run1/autoencoder-b2")
    assert request.max_batch_size == 2  # no sweep: the batch itself


def test_a_sweep_item_carries_the_sweeps_largest_batch(tmp_path):
    cfg = config(tmp_path, "sweep=batch", "sweep.max_batch=16")
    assert sweep_batches(cfg.sweep.start, cfg.sweep.factor, cfg.sweep.max_batch) == [1, 2, 4, 8, 16]
    runner = Runner(cfg, None, {}, None)
    for batch in (1, 2, 4, 8, 16):
        request = runner.item_request(WorkItem("autoencoder", batch, "throughput"))
        assert (request.batch_size, request.max_batch_size) == (batch, 16)
        assert decode(request.to_wire()).max_batch_size == 16
    # A cap that is not on the sweep's grid: the largest size the sweep can reach.
    odd = config(tmp_path, "sweep=batch", "sweep.start=3", "sweep.max_batch=20")
    assert ItemRequest.from_config(odd, "autoencoder", 3, "r").max_batch_size == 12
    # The longer window of a point measured again keeps the sweep's range.
    assert runner.longer_window().item_request(WorkItem("autoencoder", 4, "throughput")).max_batch_size == 16


def _wire(message) -> dict:
    return json.loads(message.to_wire())


@pytest.mark.parametrize("change, expected", [
    (lambda m: {**m, "v": PROTOCOL_VERSION + 1}, f"protocol version {PROTOCOL_VERSION + 1} is not this side's"),
    (lambda m: {k: v for k, v in m.items() if k != "v"}, "protocol version None"),
    (lambda m: {**m, "type": "hello"}, "unknown message type 'hello'"),
    (lambda m: {**m, "priority": 3}, "item: unknown field(s) priority"),
    (lambda m: {k: v for k, v in m.items() if k != "max_batch_size"}, "item: missing field(s) max_batch_size"),
    (lambda m: {**m, "batch_size": "4"}, "item.batch_size: expected int, got str"),
    (lambda m: {**m, "backend": {**m["backend"], "fields": {**m["backend"]["fields"], "turbo": True}}},
     "item.backend (OrtBackendConfig): unknown field(s) turbo"),
    (lambda m: {**m, "scenario": {**m["scenario"], "fields": {k: v for k, v in m["scenario"]["fields"].items()
                                                              if k != "min_duration_s"}}},
     "item.scenario (ScenarioConfig): missing field(s) min_duration_s"),
    (lambda m: {**m, "backend": {**m["backend"], "class": "bench.config.schema:SensorsConfig"}},
     "item.backend: class 'bench.config.schema:SensorsConfig' is not a BackendConfig schema"),
    (lambda m: {**m, "backend": {**m["backend"], "class": "no.such.module:Cls"}}, "cannot be imported here"),
    (lambda m: {**m, "batch_size": 32}, "batch_size=32 must be in 1..max_batch_size=4"),
])
def test_a_wrong_version_or_field_is_refused_naming_it(tmp_path, change, expected):
    line = json.dumps(change(_wire(item(tmp_path))))
    with pytest.raises(ProtocolError, match=expected.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        decode(line)


@pytest.mark.parametrize("line, expected", [
    ('{"v": %d, "type": "progress", "phase": "build"}' % PROTOCOL_VERSION, "progress: missing field(s) info"),
    ('{"v": %d, "type": "error", "kind": "oom", "message": "x", "traceback": "", "code": 1}' % PROTOCOL_VERSION,
     "error: unknown field(s) code"),
    ('{"v": 1, "type": "result", "data": {}}', "protocol version 1"),
    ("not json", "not a JSON line"),
    ("[1, 2]", "a message is a JSON object"),
])
def test_worker_messages_are_checked_too(line, expected):
    with pytest.raises(ProtocolError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        decode(line)
    with pytest.raises(ProtocolError, match="expected a 'item' message"):
        ItemRequest.from_wire(Progress("build", {}).to_wire())


def test_messages_are_frozen(tmp_path):
    request = item(tmp_path)
    with pytest.raises(AttributeError):
        request.batch_size = 8  # type: ignore[misc]
    assert replace(request, batch_size=1).batch_size == 1


def test_the_protocol_imports_neither_the_worker_nor_backends_nor_suites():
    import ast
    from pathlib import Path

    import bench.orchestration.protocol as protocol

    tree = ast.parse(Path(protocol.__file__).read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module] + \
        [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    bad = [m for m in imported if m.startswith(("bench.worker", "bench.backends", "bench.suites", "backends",
                                                "suites", "torch", "onnxruntime", "openvino", "tensorrt"))]
    assert not bad


def test_the_parent_reads_typed_messages_and_keeps_unreadable_lines_as_evidence():
    from bench.orchestration.runner import WorkerOutcome, _handle_line

    outcome, events = WorkerOutcome(), []
    _handle_line(Progress("build", {"n": 1}).to_wire().encode(), outcome, events.append)
    _handle_line(b'{"v": 1, "type": "result", "data": {}}', outcome, events.append)
    _handle_line(b"", outcome, events.append)
    _handle_line(Result({"x": 1}).to_wire().encode(), outcome, events.append)
    assert events == [{"phase": "build", "info": {"n": 1}}] and outcome.events == [Progress("build", {"n": 1})]
    assert outcome.result == {"x": 1} and outcome.error is None
    assert len(outcome.unreadable) == 1 and "protocol version 1" in outcome.unreadable[0]
    _handle_line(Error("oom", "MemoryError").to_wire().encode(), outcome, events.append)
    assert outcome.error == {"kind": "oom", "message": "MemoryError", "traceback": ""}


@pytest.mark.slow
def test_a_worker_refuses_an_item_of_another_version_and_says_why(tmp_path):
    """A spawned worker given a version-1 item answers with an error message naming the version."""
    import os
    import subprocess
    import sys

    read_fd, write_fd = os.pipe()
    old = json.dumps({"v": 1, "item": {"workload": "tiny", "batch_size": 1}})
    proc = subprocess.run([sys.executable, "-m", "bench.worker.process", str(write_fd)], input=old.encode(),
                          pass_fds=(write_fd,), capture_output=True, timeout=120)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as handle:
        lines = handle.read().splitlines()
    assert proc.returncode == 3, proc.stderr
    (message,) = [decode(line) for line in lines]
    assert isinstance(message, Error) and message.kind == "exception"
    assert "the work item cannot be read: protocol version 1 is not this side's" in message.message
