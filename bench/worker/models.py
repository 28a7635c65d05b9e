"""What identifies a measured model and checks it: the key its conversions are cached under
(``model_key``), and the parity check of a runtime's outputs against the fp32 reference
(``parity_check``). Shared by the worker's items (bench.worker.process) and scenario=continual's
adapted models (bench.worker.continual)."""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["parity_check", "model_key"]


def parity_check(outputs: list[Any], reference: list[Any], precision: str,
                 reference_name: str = "PyTorch eager fp32 on the CPU") -> dict[str, Any]:
    """Largest relative error per output, as max |out - ref| / max |ref|, against the fp32 reference."""
    import numpy as np

    from bench.backends.base import PARITY_TOLERANCE

    tolerance = PARITY_TOLERANCE[precision]
    result: dict[str, Any] = {"reference": reference_name, "tolerance": tolerance,
                              "precision": precision}
    if len(outputs) != len(reference):
        return {**result, "ok": False, "max_rel_error": float("inf"),
                "detail": f"{len(outputs)} outputs, reference has {len(reference)}"}
    errors = []
    for out, ref in zip(outputs, reference):
        if out.shape != ref.shape:
            return {**result, "ok": False, "max_rel_error": None,
                    "detail": f"output shape {list(out.shape)} != reference {list(ref.shape)}"}
        if not np.isfinite(out).all():
            return {**result, "ok": False, "max_rel_error": None, "detail": "non-finite values in the output"}
        scale = float(np.abs(ref).max()) if ref.size else 0.0
        diff = float(np.abs(out.astype(np.float64) - ref.astype(np.float64)).max()) if ref.size else 0.0
        errors.append(diff / scale if scale > 0 else diff)
    worst = max(errors, default=0.0)
    return {**result, "ok": worst <= tolerance, "max_rel_error": worst, "per_output": errors}


def model_key(catalog: str, seed: int, options: dict[str, Any], workload: Any, inputs: Any) -> str:
    """A hash of what defines the model and its inputs: suite, workload, seed, suite options, the
    model code, and one sample's input shapes and dtypes. The batch size is not part of it: a
    conversion that depends on the batch (a static-shape IR, a TensorRT profile) puts its shapes in
    its own part of the artifact key, and one that does not (the ONNX export, with its dynamic batch
    axis) is shared by every batch size of a sweep."""
    import hashlib

    from bench.suites.base import code_hash

    spec = {
        "suite": catalog, "workload": workload.name, "seed": int(seed),
        "options": options, "code": code_hash(workload),
        "inputs": [[list(t.shape[1:]), str(t.dtype)] for t in inputs],
        "user_model": _user_model_hash(options.get("model") or {}),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _user_model_hash(model: dict[str, Any]) -> str:
    """The content of a model the user brings (its ONNX file, or the source of the module that builds
    it): a changed model must never be served a conversion cached for the old one."""
    import hashlib
    import importlib.util

    digest = hashlib.sha256()
    path = model.get("path")
    if not path and model.get("target"):
        spec = importlib.util.find_spec(str(model["target"]).partition(":")[0])
        path = spec.origin if spec else None
    if path and os.path.isfile(path):
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16] if path else ""
