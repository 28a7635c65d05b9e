"""The protocol between the parent (bench.orchestration.runner) and a worker (bench.worker.process):
one typed, frozen message per kind, each one JSON line on the wire.

The parent writes one ``ItemRequest`` to the worker's stdin; the worker writes ``Progress`` events,
then exactly one ``Result`` or ``Error``, to the file descriptor it was given. Every line carries
``"v": PROTOCOL_VERSION`` and ``"type"``; ``decode`` refuses a line of another version, of an unknown
type, or with a field missing or unknown, naming it (a ``ProtocolError``), so a parent and a worker
of different code never misread each other in silence.

The item is built from the typed config in one place (``ItemRequest.from_config``): it carries the
config's own sections (suite, backend, scenario, sensors, worker, cache) as their schema dataclasses,
so every default lives in bench.config.schema only and the worker reads typed attributes. A section
whose schema has subclasses (the backend's and the scenario's settings) travels with its class name
and comes back as that class.

This module imports nothing from the worker, the backends or the suites.
"""

from __future__ import annotations

import importlib
import json
import os
import typing
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Union

from bench.config.schema import (BackendConfig, CacheConfig, Config, ScenarioConfig, SensorsConfig, SuiteConfig,
                                 WorkerConfig, as_plain, suite_options)
from bench.errors import BenchError

__all__ = ["PROTOCOL_VERSION", "ProtocolError", "ItemRequest", "Progress", "Result", "Error", "Message",
           "decode", "default_cache_dir"]

# 3: ItemRequest.scratch_dir; 2: typed messages (ItemRequest with the config's sections and
# max_batch_size); 1 was untyped dicts.
PROTOCOL_VERSION = 3


class ProtocolError(BenchError):
    """A message that is not this protocol's: another version, an unknown type, a missing or unknown field."""


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bench", "artifacts")


def _largest_sweep_batch(cfg: Config, batch_size: int) -> int:
    """The largest batch a conversion must cover: a batch sweep's largest size, else the batch itself."""
    from bench.orchestration.sweep import sweep_batches

    sw = cfg.sweep
    if getattr(sw, "name", "none") != "batch":
        return batch_size
    return max(batch_size, sweep_batches(sw.start, sw.factor, sw.max_batch)[-1])


class _Message:
    """Encoding and checked decoding of a frozen dataclass message."""

    type: ClassVar[str] = ""

    def to_wire(self) -> str:
        """One JSON line (without its newline). Infinities and NaN are refused, as JSON has none."""
        body = {f.name: _encode(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]
        return json.dumps({"v": PROTOCOL_VERSION, "type": self.type, **body}, allow_nan=False, default=str)

    @classmethod
    def from_wire(cls, line: Union[str, bytes]) -> Any:
        message = decode(line)
        if not isinstance(message, cls):
            raise ProtocolError(f"expected a {cls.type!r} message, got {message.type!r}")
        return message


@dataclass(frozen=True)
class ItemRequest(_Message):
    """One work item: a workload at a batch size, with the config sections the worker needs."""

    type: ClassVar[str] = "item"

    workload: str
    batch_size: int
    # The largest batch a conversion must serve: the sweep's largest size (so that one ONNX export,
    # TensorRT profile or engine covers every point), else batch_size.
    max_batch_size: int
    suite: SuiteConfig
    suite_options: dict[str, Any]  # what the suite is told (bench.config.schema.suite_options)
    backend: BackendConfig  # the backend's typed settings (a subclass: OrtBackendConfig, ...)
    scenario: ScenarioConfig  # a subclass for the load and training scenarios
    sensors: SensorsConfig
    worker: WorkerConfig
    cache: CacheConfig  # dir resolved: never null
    loadgen_log_dir: str  # MLPerf LoadGen's own logs (scenario.engine=loadgen), beside the records
    # The worker's temporary files go here (the sampler's samples): a folder the parent made for this
    # worker alone and removes when it is gone (bench.orchestration.scratch). "": the temporary folder.
    scratch_dir: str = ""

    @classmethod
    def from_config(cls, cfg: Config, workload: str, batch_size: int, run_id: str) -> "ItemRequest":
        """The item of ``workload`` at ``batch_size`` under ``cfg``: the one place a config becomes an item."""
        batch_size = int(batch_size)
        return cls(
            workload=workload, batch_size=batch_size, max_batch_size=_largest_sweep_batch(cfg, batch_size),
            suite=cfg.suite, suite_options=suite_options(cfg), backend=cfg.backend, scenario=cfg.scenario,
            sensors=cfg.sensors, worker=cfg.worker, cache=replace(cfg.cache, dir=cfg.cache.dir or default_cache_dir()),
            loadgen_log_dir=str(Path(cfg.results.dir).expanduser().resolve() / "loadgen" / run_id
                                / f"{workload}-b{batch_size}"),
        )

    def __post_init__(self) -> None:
        if not (1 <= self.batch_size <= self.max_batch_size):
            raise ProtocolError(f"item: batch_size={self.batch_size} must be in 1..max_batch_size={self.max_batch_size}")


@dataclass(frozen=True)
class Progress(_Message):
    """A phase the worker entered (build, prepare, warmup, measure, ...) and what it knows so far."""

    type: ClassVar[str] = "progress"

    phase: str
    info: dict[str, Any]

    def to_event(self) -> dict[str, Any]:
        """The shape the progress display takes."""
        return {"phase": self.phase, "info": self.info}


@dataclass(frozen=True)
class Result(_Message):
    """The item's raw result (measured figures and evidence), which the parent turns into a record."""

    type: ClassVar[str] = "result"

    data: dict[str, Any]


@dataclass(frozen=True)
class Error(_Message):
    """The item failed in the worker: ``kind`` is 'oom' or 'exception'."""

    type: ClassVar[str] = "error"

    kind: str
    message: str
    traceback: str = ""


Message = Union[ItemRequest, Progress, Result, Error]
_TYPES: dict[str, type] = {cls.type: cls for cls in (ItemRequest, Progress, Result, Error)}


def decode(line: Union[str, bytes]) -> Message:
    """One wire line as its message; a ProtocolError naming what is wrong otherwise."""
    try:
        raw = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not a JSON line ({exc}): {_clip(line)}") from None
    if not isinstance(raw, dict):
        raise ProtocolError(f"a message is a JSON object, got {type(raw).__name__}: {_clip(line)}")
    version = raw.pop("v", None)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {version!r} is not this side's {PROTOCOL_VERSION}: the parent and "
                            "the worker run different versions of bench (reinstall, or check PYTHONPATH)")
    kind = raw.pop("type", None)
    cls = _TYPES.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ProtocolError(f"unknown message type {kind!r} (known: {', '.join(_TYPES)})")
    return _decode_dataclass(cls, raw, kind)


def _clip(line: Union[str, bytes], limit: int = 120) -> str:
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line)
    return text if len(text) <= limit else text[:limit] + "..."


def _encode(value: Any) -> Any:
    """A config section travels as its class and its fields; anything else as it is."""
    if is_dataclass(value) and not isinstance(value, type):
        return {"class": f"{type(value).__module__}:{type(value).__qualname__}", "fields": as_plain(value)}
    return value


_PLAIN = {int: int, str: str, dict: dict}


def _decode_dataclass(cls: type, data: dict[str, Any], where: str) -> Any:
    """The message ``cls`` from ``data``, whose keys must be exactly its fields (a field with a default
    is written all the same); config sections decoded by _decode_section."""
    declared = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(declared))
    if unknown:
        raise ProtocolError(f"{where}: unknown field(s) {', '.join(unknown)} (this side's {cls.__name__} has "
                            f"{', '.join(declared)})")
    missing = sorted(name for name in declared if name not in data)
    if missing:
        raise ProtocolError(f"{where}: missing field(s) {', '.join(missing)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        expected = hints[name]
        if isinstance(expected, type) and is_dataclass(expected):
            values[name] = _decode_section(expected, value, f"{where}.{name}")
            continue
        plain = _PLAIN.get(typing.get_origin(expected) or expected)
        if plain is not None and (not isinstance(value, plain) or isinstance(value, bool)):
            raise ProtocolError(f"{where}.{name}: expected {plain.__name__}, got {type(value).__name__} {value!r}")
        values[name] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{where}: {exc}") from None


def _decode_section(base: type, value: Any, where: str) -> Any:
    """A config section: ``{"class": "module:Class", "fields": {...}}`` with Class ``base`` or a subclass."""
    if not isinstance(value, dict) or set(value) != {"class", "fields"} or not isinstance(value["fields"], dict):
        raise ProtocolError(f"{where}: a config section is {{'class': 'module:Class', 'fields': {{...}}}}, "
                            f"got {_clip(json.dumps(value, default=str))}")
    cls = _section_class(str(value["class"]), base, where)
    return _decode_fields(cls, value["fields"], where)


def _section_class(path: str, base: type, where: str) -> type:
    module_name, _, name = path.partition(":")
    try:
        cls: Any = importlib.import_module(module_name)
        for part in name.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ProtocolError(f"{where}: class {path!r} cannot be imported here ({exc})") from None
    if not (isinstance(cls, type) and is_dataclass(cls) and issubclass(cls, base)):
        raise ProtocolError(f"{where}: class {path!r} is not a {base.__name__} schema")
    return cls


def _decode_fields(cls: type, data: dict[str, Any], where: str) -> Any:
    """A schema dataclass from its plain fields, exactly those (nested sections, e.g. scenario.loadgen,
    are schema dataclasses of their declared type)."""
    declared = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - declared)
    missing = sorted(declared - set(data))
    if unknown or missing:
        what = "; ".join(part for part in (f"unknown field(s) {', '.join(unknown)}" if unknown else "",
                                           f"missing field(s) {', '.join(missing)}" if missing else "") if part)
        raise ProtocolError(f"{where} ({cls.__name__}): {what}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        expected = hints[name]
        values[name] = (_decode_fields(expected, value, f"{where}.{name}")
                        if isinstance(expected, type) and is_dataclass(expected) and isinstance(value, dict) else value)
    return cls(**values)

