"""A model the user brings: ``suite=custom model.path=<file.onnx>`` (any ONNX-based backend) or
``suite=custom model.target=<package.module:function>`` (a function that builds a torch module; any
backend).

An ONNX file's input names, shapes and types are read from the file; its batch axis (the first) takes
``batch_size``, and any other dimension the file leaves open must be set in the config, by name
(``model.dims.height=224``) or per input (``model.shapes.image=[3,224,224]``, without the batch).
The parity reference of an ONNX file is ONNX Runtime on the CPU, on the same inputs. A torch
module's inputs are ``model.input_shape`` (one sample, without the batch) of ``model.input_dtype``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Optional

from bench.suites.base import Instance, Suite, SuiteOptionError, Workload

__all__ = ["SUITE", "onnx_inputs", "resolve_shapes", "check_names"]

_ONNX_FIX = "give an ONNX model file, e.g. suite=custom model.path=models/line3.onnx"
_DTYPES = {1: "float32", 10: "float16", 16: "bfloat16", 11: "float64", 6: "int32", 7: "int64", 9: "bool",
           2: "uint8", 3: "int8"}


def _model(options: dict[str, Any]) -> dict[str, Any]:
    return dict(options.get("model") or {})


def onnx_inputs(path: str) -> list[dict[str, Any]]:
    """[{name, dtype, dims}] of the graph's real inputs (initializers excluded); a dim is an int or
    the name of a symbolic dimension, or None when the file leaves it unnamed."""
    try:
        import onnx
    except ImportError:
        raise SuiteOptionError("model.path", path, "pip install -c constraints.txt -e '.[onnx]'",
                               "needs the onnx package to be read") from None
    file = Path(path).expanduser()
    if not file.is_file():
        raise SuiteOptionError("model.path", path, _ONNX_FIX, "does not exist")
    try:
        proto = onnx.load(str(file), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and others for a bad file
        raise SuiteOptionError("model.path", path, _ONNX_FIX, f"is not a valid ONNX model ({type(exc).__name__})") \
            from None
    if not proto.graph.node:
        raise SuiteOptionError("model.path", path, _ONNX_FIX, "is not a valid ONNX model (no graph)")
    initializers = {t.name for t in proto.graph.initializer}
    inputs = []
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims: list[Any] = []
        for d in tensor.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
        inputs.append({"name": value.name, "dtype": _DTYPES.get(tensor.elem_type, f"onnx type {tensor.elem_type}"),
                       "dims": dims})
    return inputs


def resolve_shapes(inputs: list[dict[str, Any]], batch_size: int, model: dict[str, Any]) -> list[list[int]]:
    """Concrete shapes: the first axis takes the batch size; the others come from the file, then
    model.shapes (per input), then model.dims (per symbolic name)."""
    shapes = model.get("shapes") or {}
    dims_by_name = model.get("dims") or {}
    out = []
    for spec in inputs:
        name, dims = spec["name"], spec["dims"]
        if not dims:
            raise SuiteOptionError("model.path", model.get("path"), "use a model whose inputs have a batch axis",
                                   f"has input {name!r} without dimensions (a scalar)")
        given = shapes.get(name)
        if given is not None and len(given) != len(dims) - 1:
            raise SuiteOptionError(f"model.shapes.{name}", list(given),
                                   f"give {len(dims) - 1} sizes (the input has {len(dims)} axes; the first is the "
                                   "batch)", "has the wrong number of sizes")
        shape = [batch_size]
        for axis, dim in enumerate(dims[1:], start=1):
            size = given[axis - 1] if given is not None else (dim if isinstance(dim, int) else None)
            if size is None and isinstance(dim, str):
                size = dims_by_name.get(dim)
            if size is None or int(size) < 1:
                hint = f"model.dims.{dim}=<size>" if isinstance(dim, str) else f"model.shapes.{name}=[...]"
                raise SuiteOptionError("model.path", model.get("path"), f"set it: {hint}",
                                       f"leaves axis {axis} ({dim or 'unnamed'}) of input {name!r} undetermined")
            shape.append(int(size))
        out.append(shape)
    return out


def check_names(inputs: list[dict[str, Any]], model: dict[str, Any]) -> None:
    """model.dims names an open dimension of the file (not only the batch axis), model.shapes an input,
    and a size given by model.shapes agrees with the file where the file fixes it."""
    open_dims = sorted({d for spec in inputs for d in spec["dims"][1:] if isinstance(d, str)})
    batch_dims = {spec["dims"][0] for spec in inputs if spec["dims"] and isinstance(spec["dims"][0], str)}
    names = [spec["name"] for spec in inputs]
    for dim, size in (model.get("dims") or {}).items():
        if dim in open_dims:
            continue
        if dim in batch_dims:
            raise SuiteOptionError(f"model.dims.{dim}", size, f"use batch_size={size} (the first axis takes the "
                                   "batch size)", "names the batch axis")
        have = f"use one of {', '.join(open_dims)}" if open_dims else \
            "drop it: the file leaves no dimension open besides the batch"
        raise SuiteOptionError(f"model.dims.{dim}", size, have, f"is not an open dimension of {model.get('path')}")
    for name, shape in (model.get("shapes") or {}).items():
        spec = next((spec for spec in inputs if spec["name"] == name), None)
        if spec is None:
            raise SuiteOptionError(f"model.shapes.{name}", list(shape), f"name an input of the file: "
                                   f"{', '.join(names)}", f"is not an input of {model.get('path')}")
        for axis, (fixed, size) in enumerate(zip(spec["dims"][1:], shape), start=1):
            if isinstance(fixed, int) and fixed > 0 and int(size) != fixed:
                raise SuiteOptionError(f"model.shapes.{name}", list(shape), f"give {fixed} at axis {axis}, as the "
                                       "file fixes it (only its open dimensions take other sizes)",
                                       f"disagrees with the file's shape {spec['dims']}")


def _make_tensor(shape: list[int], dtype: str, generator: Any) -> Any:
    import torch

    if dtype in ("float32", "float16", "bfloat16", "float64"):
        return torch.rand(shape, generator=generator, dtype=torch.float32).to(getattr(torch, dtype))
    if dtype == "bool":
        return torch.zeros(shape, dtype=torch.bool)
    # Integers: small non-negative values are valid indices for most models (token ids, classes).
    return torch.randint(0, 2, shape, generator=generator, dtype=getattr(torch, dtype))


def check_options(suite: Suite, options: dict[str, Any]) -> None:
    model = _model(options)
    path, target = model.get("path"), model.get("target")
    if bool(path) == bool(target):
        raise SuiteOptionError("model.path", path, "give exactly one of model.path=<file.onnx> or "
                               "model.target=<package.module:function>", "and model.target are both set" if path
                               else "is missing")
    if path:
        for key in ("input_shape", "input_dtype"):
            if model.get(key) not in (None, [], "float32"):
                raise SuiteOptionError(f"model.{key}", model[key], "drop it: an ONNX file's inputs come from the "
                                       "file (set its open dimensions with model.dims.NAME or model.shapes.INPUT)",
                                       "applies to model.target, not to model.path")
        inputs = onnx_inputs(path)
        check_names(inputs, model)
        resolve_shapes(inputs, 1, model)
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None:
            raise SuiteOptionError("model.path", path, "pip install -c constraints.txt -e '.[onnx]'",
                                   "needs ONNX Runtime as its parity reference")
    else:
        for key in ("dims", "shapes"):
            for name, value in (model.get(key) or {}).items():
                raise SuiteOptionError(f"model.{key}.{name}", value, "give one sample's shape with "
                                       "model.input_shape=[...] (model.dims and model.shapes name an ONNX file's "
                                       "dimensions and inputs, model.path)", "is not read for model.target")
        if not model.get("input_shape"):
            raise SuiteOptionError("model.input_shape", model.get("input_shape"),
                                   "give one sample's shape without the batch, e.g. model.input_shape=[3,224,224]",
                                   "is needed with model.target")
        from bench.suites.base import resolve

        try:
            builder = resolve(target)
        except (ImportError, ValueError) as exc:
            raise SuiteOptionError("model.target", target, "give package.module:function, importable from here",
                                   f"cannot be imported ({exc})") from None
        if not callable(builder):
            raise SuiteOptionError("model.target", target, "name a function that returns a torch.nn.Module",
                                   "is not callable")


def _file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def describe(workload: Workload, options: dict[str, Any]) -> dict[str, Any]:
    model = _model(options)
    if model.get("path"):
        return {"name": Path(model["path"]).stem, "model_path": str(Path(model["path"]).resolve()),
                "model_format": "onnx", "dataset": "user model", "inputs": onnx_inputs(model["path"])}
    if model.get("target"):
        return {"name": model["target"].rpartition(":")[2], "model_target": model["target"], "model_format": "torch",
                "dataset": "user model", "input_shape": list(model.get("input_shape") or [])}
    return {}


def instantiate(workload: Workload, batch_size: int, seed: int, options: dict[str, Any]) -> Instance:
    import torch

    model = _model(options)
    generator = torch.Generator().manual_seed(seed)
    info = describe(workload, options)
    if model.get("path"):
        path = str(Path(model["path"]).expanduser().resolve())
        inputs_spec = onnx_inputs(path)
        shapes = resolve_shapes(inputs_spec, batch_size, model)
        inputs = tuple(_make_tensor(shape, spec["dtype"], generator) for shape, spec in zip(shapes, inputs_spec))
        info.update(input_shapes=shapes, model_sha256=_file_hash(path), params=_onnx_params(path),
                    flops_note="FLOPs are not counted for ONNX files")

        def reference(tensors: tuple[Any, ...]) -> list[Any]:
            import onnxruntime as ort

            session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            feeds = {spec["name"]: t.numpy() for spec, t in zip(inputs_spec, tensors)}
            return [out.astype("float32") for out in session.run(None, feeds)]

        return Instance(None, inputs, info, onnx_path=path, reference=reference,
                        reference_name="ONNX Runtime on the CPU (fp32)")
    from bench.suites.base import resolve

    torch.manual_seed(seed)
    builder = resolve(model["target"])
    try:
        module = builder(seed=seed)
    except TypeError:
        module = builder()  # a builder without a seed parameter
    dtype = getattr(torch, model.get("input_dtype") or "float32")
    shape = [batch_size, *[int(d) for d in model["input_shape"]]]
    inputs = (_make_tensor(shape, str(dtype).replace("torch.", ""), generator),)
    return Instance(module.eval(), inputs, info)


def _onnx_params(path: str) -> Optional[int]:
    import onnx

    proto = onnx.load(path, load_external_data=False)
    total = 0
    for tensor in proto.graph.initializer:
        count = 1
        for d in tensor.dims:
            count *= d
        total += count
    return total


SUITE = Suite(
    name="custom",
    description="a model you bring: model.path=<file.onnx> or model.target=<package.module:function>",
    workloads=(Workload(name="custom", family="user model", builder="", input_shape=(), dataset="user model",
                        preprocessing="as the user's model expects", latency_tier_ms=100, licence="the user's",
                        reference="the user's model", outputs=(), dataset_licence="the user's",
                        # task, domain, category: unknown until the model is given (empty: no filter matches)
                        description="the model given with model.path or model.target"),),
    instantiate=instantiate,
    check_options=check_options,
    describe=describe,
    model_options=True,
)
