"""A model the user brings: an ONNX file on the ONNX-based backends, a torch module on any backend,
and the usage errors of each."""

from __future__ import annotations

import json

import pytest

from bench.cli.main import main
from tests.conftest import ROOT

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

FAST = ["scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "scenario.min_iterations=5",
        "scenario.min_duration_s=0.1", "scenario.max_duration_s=0.5", "sensors.enabled=false"]


def relu_model(path, dims=("N", 3, "H", 8)):
    """Y = Relu(X) with a batch axis N and an open height H."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, list(dims))
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, list(dims))
    graph = helper.make_graph([helper.make_node("Relu", ["image"], ["out"])], "relu", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def records(folder):
    return [json.loads(p.read_text()) for p in (folder / "results" / "records").rglob("*.json")]


@pytest.mark.slow
def test_an_onnx_file_runs_on_onnxruntime_with_its_open_dimension_set(in_tmp):
    path = relu_model(in_tmp / "relu.onnx")
    args = ["run", "suite=custom", f"model.path={path}", "model.dims.H=5", "backend=onnxruntime", "batch_size=2",
            *FAST]
    assert main(args) == 0
    (record,) = records(in_tmp)
    assert record["status"] == "ok" and record["parity"]["ok"]
    assert record["parity"]["reference"] == "ONNX Runtime on the CPU (fp32)"
    assert record["workload"]["input_shapes"] == [[2, 3, 5, 8]]
    assert record["workload"]["name"] == "relu" and record["workload"]["params"] == 0
    assert record["workload"]["flops_per_sample"] is None  # not counted for ONNX files, never guessed
    assert record["backend"]["effective"]["conversion"]["cache_hit"] is True  # the user's file, as it is


@pytest.mark.slow
def test_a_torch_module_from_a_target_runs_on_the_cpu_backend(in_tmp):
    args = ["run", "suite=custom", "model.target=tests.fakes:build_tiny", "model.input_shape=[16]", *FAST]
    assert main(args) == 0
    (record,) = records(in_tmp)
    assert record["status"] == "ok" and record["valid"] if "valid" in record else record["parity"]["ok"]
    assert record["workload"]["params"] == 16 * 32 + 32 + 32 * 4 + 4
    assert record["workload"]["flops_per_sample"] == 2 * (16 * 32 + 32 * 4)


@pytest.mark.parametrize(
    "make, args, message",
    [
        (None, ["model.path=/no/such/model.onnx", "backend=onnxruntime"], "does not exist"),
        ("text", ["backend=onnxruntime"], "is not a valid ONNX model"),
        ("relu", ["backend=onnxruntime"], "leaves axis 2 (H) of input 'image' undetermined: set it: model.dims.H"),
        ("relu", ["backend=cpu", "model.dims.H=4"], "backend='cpu' cannot run an ONNX file"),
        ("relu", ["backend=onnxruntime", "model.shapes.image=[3,4]"], "has the wrong number of sizes"),
        (None, ["model.target=tests.fakes:build_tiny"], "model.input_shape=[] is needed with model.target"),
        (None, ["model.target=nope.nothing:build", "model.input_shape=[3]"], "cannot be imported"),
        (None, [], "model.path is missing"),
    ],
)
def test_bad_user_models_are_refused_before_any_work(make, args, message, in_tmp, capsys):
    extra = []
    if make == "text":
        bad = in_tmp / "model.onnx"
        bad.write_text("not a model")
        extra = [f"model.path={bad}"]
    elif make == "relu":
        extra = [f"model.path={relu_model(in_tmp / 'relu.onnx')}"]
    before = sorted(p.name for p in in_tmp.iterdir())
    assert main(["run", "suite=custom", *extra, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert sorted(p.name for p in in_tmp.iterdir()) == before  # nothing written


def test_the_custom_suite_composes_and_lists(capsys):
    assert main(["list", "suite=custom", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["suites"][0]["name"] == "custom"
    assert ROOT.exists()
