"""The conversion cache: ONNX exports, OpenVINO models and TensorRT engines stored on disk under a
hash of what determines them, so that a sweep converts once.

The key of an artifact is the hash of the model spec and input spec (``PrepareContext.model_key``,
made by the worker from one sample's shapes: the batch size is not in it), the kind of artifact, and
whatever else determines it (precision, backend settings, library versions, and the batch sizes it
serves), given by the backend. An artifact that covers a range of batch sizes keys on the range, not
on the batch measured: the ONNX export (dynamic batch axis up to onnx_export.MAX_BATCH) is the same
file for every batch, a TensorRT profile covers 1..max_batch_size, so every point of a batch sweep
after the first is served from the cache. One built for one batch (a static-shape model) puts that
batch in its key. An artifact is built into a temporary folder and
renamed into place, so a killed build never leaves a half-written artifact that a later run would
trust. Each artifact folder holds a ``meta.json`` with the key's parts and the build time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from bench.backends.base import PrepareContext

__all__ = ["Artifact", "cached_artifact", "cached_onnx", "library_versions", "describe_conversion"]


def library_versions(*names: str) -> dict[str, Optional[str]]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, Optional[str]] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


@dataclass(frozen=True)
class Artifact:
    path: Path  # the artifact's folder
    key: str
    cache_hit: bool
    build_s: float  # this run's build time; 0 on a hit
    built_s: float  # how long the build took when it was made (from meta.json)

    def describe(self) -> dict[str, Any]:
        return {"artifact_key": self.key, "cache_hit": self.cache_hit, "build_s": self.build_s,
                "original_build_s": self.built_s, "artifact_dir": str(self.path)}


def cached_artifact(kind: str, context: PrepareContext, parts: dict[str, Any],
                    build: Callable[[Path], None]) -> Artifact:
    """The artifact folder for ``kind`` and ``parts``, built by ``build(folder)`` on a miss."""
    spec = {"kind": kind, "model": context.model_key, **parts}
    key = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:32]
    root = Path(context.cache_dir or tempfile.mkdtemp(prefix="bench-artifacts-")).expanduser()
    final = root / kind / key
    meta_path = final / "meta.json"
    if context.cache_enabled and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        return Artifact(final, key, True, 0.0, float(meta.get("build_s", 0.0)))
    (root / kind).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root / kind))
    try:
        t0 = time.perf_counter()
        build(staging)
        build_s = time.perf_counter() - t0
        (staging / "meta.json").write_text(json.dumps({**spec, "build_s": build_s}, indent=1, default=str))
        if final.exists():
            shutil.rmtree(final)  # a rebuild (cache disabled) replaces the old artifact
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Artifact(final, key, False, build_s, build_s)


def cached_onnx(model: Any, example_inputs: Sequence[Any], context: PrepareContext) -> tuple[Path, Artifact]:
    """The model as an ONNX file with a dynamic batch axis (fp32), exported once per model spec; or
    the user's own ONNX file, as it is, when the context names one."""
    from bench.backends.onnx_export import export_onnx

    from bench.backends.onnx_export import MAX_BATCH

    if context.onnx_path:
        path = Path(context.onnx_path).resolve()
        return path, Artifact(path.parent, context.model_key, True, 0.0, 0.0)
    top = max(context.batch_size, context.max_batch_size)
    if top > MAX_BATCH:
        raise ValueError(f"batch {top} is above the {MAX_BATCH} the ONNX export's dynamic batch axis accepts "
                         f"(bench.backends.onnx_export.MAX_BATCH): use a smaller batch_size or sweep.max_batch")

    def build(folder: Path) -> None:
        examples = [_at_least_two(t) for t in example_inputs]
        export_onnx(model, examples, folder / "model.onnx")

    # No batch size in the key: the file serves every batch in 1..MAX_BATCH (the model key holds one
    # sample's shapes), so each point of a batch sweep after the first is a cache hit.
    parts = {"batch_axis": f"dynamic 1..{MAX_BATCH}", "versions": library_versions("torch", "onnx", "onnxscript")}
    artifact = cached_artifact("onnx", context, parts, build)
    return artifact.path / "model.onnx", artifact


def _at_least_two(tensor: Any) -> Any:
    """Exporters specialise a dimension whose example size is 1: export with a batch of 2."""
    if tensor.shape[0] >= 2:
        return tensor
    return tensor.expand(2, *tensor.shape[1:]).contiguous()


def describe_conversion(stages: dict[str, Optional[Artifact]]) -> dict[str, Any]:
    """What every backend reports of its conversions, in one shape: whether the cache served all of
    them, this run's build time (the setup cost it paid), and each stage's details."""
    present = {name: a for name, a in stages.items() if a is not None}
    return {"cache_hit": all(a.cache_hit for a in present.values()),
            "build_s": sum(a.build_s for a in present.values()),
            "stages": {name: a.describe() for name, a in present.items()}}
