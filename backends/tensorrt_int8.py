"""int8 for the native TensorRT backend (``backend=tensorrt precision=int8``): the calibration data
and the two ways TensorRT gets int8 scales from it.

``backend.int8_method=qdq`` (the default) is explicit quantization: ONNX Runtime's static quantizer
(``quantize_static``, QDQ format) calibrates the fp32 ONNX export on the calibration data and writes
a Q/DQ graph, which TensorRT builds as a strongly typed network. TensorRT quantizes symmetrically
only (zero points 0), activations per tensor and weights per output channel, so the quantizer runs
with signed int8 for both, symmetric activations and weights, per-channel weights, and the bias left
in float (TensorRT fuses it in floating point). It works with TensorRT 10 and 11.

``backend.int8_method=calibrator`` is TensorRT's own implicit quantization with an
``IInt8EntropyCalibrator2``: deprecated since TensorRT 10.1 and removed in 11, kept for comparison
with older results only.

Calibration data: ``backend.int8_calibration`` (a folder of ``.npy`` tensors, one input's samples,
preprocessed as the workload's input), or, when it is null, the workload's own inputs, drawn the way
the worker draws the measured ones (``PrepareContext.calibration_inputs``), a bounded number of
batches (``calibration_batch_count``). The Q/DQ file is cached (``cached_artifact``) under a key that
names the export, the calibration data's digest, the quantizer's version and its settings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

__all__ = ["calibration_files", "calibration_digest", "calibration_samples", "calibration_batches",
           "arrays_digest", "calibration_batch_count", "workload_calibration", "quantizer_version",
           "quantize_qdq", "qdq_nodes", "entropy_calibrator", "QDQ_SETTINGS", "CALIBRATION_SAMPLES",
           "CALIBRATION_BATCHES", "INT8_METHODS"]

INT8_METHODS = ("qdq", "calibrator")
# The workload's own inputs as calibration data: at most this many batches and this many samples (a
# pyperf-style cap: the search is bounded and what it took is recorded).
CALIBRATION_BATCHES = 8
CALIBRATION_SAMPLES = 64
# What quantize_static is told; recorded, and part of the Q/DQ file's cache key.
QDQ_SETTINGS: dict[str, Any] = {
    "quant_format": "QDQ", "activation_type": "QInt8", "weight_type": "QInt8", "per_channel": True,
    "calibrate_method": "MinMax", "ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
}


# ---------------------------------------------------------------- calibration data


def calibration_files(folder: str | Path) -> list[Path]:
    """The calibration tensors: ``*.npy`` files, in name order."""
    return sorted(p for p in Path(folder).expanduser().glob("*.npy") if p.is_file())


def calibration_digest(files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def arrays_digest(batches: Sequence[Sequence[Any]]) -> str:
    """The digest of in-memory calibration batches (each a tuple of arrays, one per input)."""
    digest = hashlib.sha256()
    for batch in batches:
        for array in batch:
            digest.update(f"{array.dtype}{list(array.shape)}".encode() + b"\0")
            digest.update(array.tobytes())
    return digest.hexdigest()[:32]


def calibration_samples(files: Sequence[Path], sample_shape: Sequence[int]) -> Any:
    """Every float32 sample of the .npy files, stacked: each file one sample (the input's shape
    without the batch) or a stack of them."""
    import numpy as np

    sample_shape = tuple(int(d) for d in sample_shape)
    samples = []
    for path in files:
        array = np.load(path, allow_pickle=False)
        if array.shape == sample_shape:
            array = array[None]
        if array.shape[1:] != sample_shape:
            raise ValueError(f"calibration file {path} has shape {list(array.shape)}; expected one input "
                             f"{list(sample_shape)} or a stack [N, {', '.join(map(str, sample_shape))}], "
                             "preprocessed exactly as the workload's input")
        samples.append(array.astype(np.float32, copy=False))
    return np.concatenate(samples) if samples else np.zeros((0, *sample_shape), np.float32)


def calibration_batches(files: Sequence[Path], sample_shape: Sequence[int], batch: int) -> list[Any]:
    """Full batches of float32 samples from .npy files. A trailing partial batch is dropped: the
    calibrator runs at one batch size."""
    import numpy as np

    stacked = calibration_samples(files, sample_shape)
    if len(stacked) < batch:
        raise ValueError(f"calibration needs at least one batch of {batch} samples; the files hold {len(stacked)}")
    return [np.ascontiguousarray(stacked[i:i + batch]) for i in range(0, len(stacked) - batch + 1, batch)]


def calibration_batch_count(batch: int) -> int:
    """How many batches of the workload's inputs calibrate: up to CALIBRATION_SAMPLES samples, at
    most CALIBRATION_BATCHES batches, and always the one measured."""
    return max(1, min(CALIBRATION_BATCHES, CALIBRATION_SAMPLES // max(1, int(batch))))


def workload_calibration(example_inputs: Sequence[Any], more: Optional[Callable[[int], Sequence[Any]]],
                         ) -> tuple[dict[str, Any], Callable[[], list[tuple[Any, ...]]]]:
    """Calibration from the workload's own inputs: the batch measured, then ``more(i)`` (the
    worker's inputs drawn with the seeds after the run's, PrepareContext.calibration_inputs) up to
    calibration_batch_count batches. Returns what the record (and the cache key) says of them, and
    a function that draws them, called only when the Q/DQ file is built: the digest is of the batch
    measured; the others follow from it and the model key (suite, workload, seed, options, code),
    which the artifact's key holds too. Each batch is a tuple of arrays, one per input."""
    import numpy as np

    def arrays(tensors: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(np.ascontiguousarray(t.detach().cpu().numpy()) for t in tensors)

    batch = int(example_inputs[0].shape[0])
    wanted = calibration_batch_count(batch) if more is not None else 1
    first = arrays(example_inputs)
    info: dict[str, Any] = {"source": "workload inputs", "batches": wanted, "samples": wanted * batch,
                            "bound": {"batches": CALIBRATION_BATCHES, "samples": CALIBRATION_SAMPLES},
                            "digest": arrays_digest([first])}
    if more is None and calibration_batch_count(batch) > 1:
        info["note"] = "the batch measured only: no way to draw more of the workload's inputs was given"

    def produce() -> list[tuple[Any, ...]]:
        return [first, *(arrays(more(i)) for i in range(wanted - 1))] if more is not None else [first]

    return info, produce


# ---------------------------------------------------------------- explicit quantization (Q/DQ)


def quantizer_version() -> str:
    from importlib.metadata import version

    return f"onnxruntime=={version('onnxruntime')} quantize_static"


def qdq_nodes(onnx_file: Path) -> dict[str, int]:
    """The QuantizeLinear and DequantizeLinear nodes of an ONNX file's graph; {} when it has none."""
    import onnx

    ops = [n.op_type for n in onnx.load(str(onnx_file), load_external_data=False).graph.node]
    counts = {"quantize_nodes": ops.count("QuantizeLinear"), "dequantize_nodes": ops.count("DequantizeLinear")}
    return counts if any(counts.values()) else {}


def quantize_qdq(onnx_in: Path, onnx_out: Path, batches: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Write ``onnx_out``: ``onnx_in`` with QuantizeLinear/DequantizeLinear pairs whose scales are
    calibrated (MinMax) on ``batches``, in the symmetric int8 form TensorRT takes. Runs on the CPU
    (ONNX Runtime's CPU provider calibrates). Returns the counts of Q and DQ nodes written."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    model = onnx.load(str(onnx_in), load_external_data=False)
    initializers = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in initializers]
    if batches and len(batches[0]) != len(names):
        raise ValueError(f"the ONNX graph has {len(names)} inputs {names}; the calibration data {len(batches[0])}")

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter([dict(zip(names, batch)) for batch in batches])

        def get_next(self) -> Optional[dict[str, Any]]:
            return next(self._feeds, None)

    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    quantize_static(
        str(onnx_in), str(onnx_out), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
        use_external_data_format=external,
        # TensorRT: symmetric int8 (zero point 0) for activations and weights; a float bias.
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
    )
    return qdq_nodes(onnx_out) or {"quantize_nodes": 0, "dequantize_nodes": 0}


# ---------------------------------------------------------------- TensorRT's calibrator (deprecated)


def entropy_calibrator(trt: Any, torch: Any, batches: list[Any], device: Any, cache: Path) -> Any:
    """IInt8EntropyCalibrator2 over host batches, copied one at a time into one device buffer.
    Deprecated in TensorRT 10.1, removed in 11. Not yet run on a GPU."""

    class _EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)  # the bindings require the base constructor
            self.index = 0
            self.buffer = torch.empty(batches[0].shape, dtype=torch.float32, device=device)

        def get_batch_size(self) -> int:  # ignored for explicit-batch networks (the profile decides)
            return int(batches[0].shape[0])

        def get_batch(self, names: list[str]) -> Optional[list[int]]:
            if self.index >= len(batches):
                return None
            self.buffer.copy_(torch.from_numpy(batches[self.index]))
            torch.cuda.synchronize(device)
            self.index += 1
            return [int(self.buffer.data_ptr())]

        def read_calibration_cache(self) -> Optional[bytes]:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            cache.write_bytes(bytes(data))

    return _EntropyCalibrator()
