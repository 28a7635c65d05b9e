"""The vision suite (bench.suites.vision): the catalog's entries, the pipelines' geometry (resize the
short side and centre crop; YOLOX's letterbox) checked against a by-hand computation with stand-in
models, the pipelines' ONNX export, bad options refused before any work, and one end-to-end
`bench run suite=vision` on its smallest default workload with the shortest scenario settings."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from bench.cli.main import main  # noqa: E402
from bench.suites.base import IMAGENET_MEAN, IMAGENET_STD, SuiteOptionError  # noqa: E402
from bench.suites.images import load_images  # noqa: E402
from bench.suites.vision import (  # noqa: E402
    DATASETS,
    PREPROCESSING,
    SUITE,
    Preprocessing,
    build_classification_pipeline,
    build_detection_pipeline,
    check_options,
    describe,
)
from tests.onnx_parity import assert_onnx_matches  # noqa: E402


def opts(**kw):
    base = {"dataset": "", "boundary": "model", "tile_size": 256, "data_path": None}
    base.update(kw)
    return base


class PixelLogits(torch.nn.Module):
    """A stand-in classifier: 'logits' are the first 10 values of the flattened first channel, so a
    test sees exactly which pixels the pipeline handed to the model."""

    def forward(self, x):
        return x[:, 0].flatten(1)[:, :10] * 10


class PixelDetections(torch.nn.Module):
    """A stand-in detector with two anchor points: boxes from fixed values, objectness 0.5, two
    class probabilities read from the input's pixels."""

    def forward(self, x):
        n = x.shape[0]
        box = torch.tensor([[320.0, 240.0, 100.0, 50.0], [10.0, 20.0, 4.0, 8.0]]).expand(n, 2, 4)
        obj = torch.full((n, 2, 1), 0.5)
        cls = torch.stack([x[:, 0, 0, :2], x[:, 0, -1, :2]], dim=1) / 255.0  # top-left pixels, bottom row pixels
        return torch.cat([box, obj, cls], dim=-1)


def test_catalog_entries_are_complete_and_the_default_selection_is_the_light_models():
    for workload in SUITE.workloads:
        entry = workload.catalog()
        for key in ("task", "domain", "category", "min_resolution", "licence", "dataset_licence", "reference",
                    "description", "preprocessing"):
            assert entry[key], (workload.name, key)
        assert workload.name in PREPROCESSING
    import yaml

    from tests.conftest import ROOT

    config = yaml.safe_load((ROOT / "conf" / "suite" / "vision.yaml").read_text())
    assert config["only"] == ["resnet50", "mobilenetv3_large", "efficientnet_b0"]
    assert "NMS" in SUITE.get("yolox_s").description


def test_classification_pipeline_resizes_the_short_side_crops_the_centre_and_normalises():
    images = torch.randint(0, 256, (2, 30, 45, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    pre = Preprocessing("crop", size=8, resize=12, interpolation="bilinear")
    pipe = build_classification_pipeline(PixelLogits(), pre, top=3)
    probs, classes = pipe(images)
    # By hand: 30x45 -> 12x18 (short side 12, long side int(12 * 45 / 30)), rows 2..9, columns 5..12.
    x = F.interpolate(images.permute(0, 3, 1, 2).float() / 255, size=(12, 18), mode="bilinear",
                      align_corners=False, antialias=True)[:, :, 2:10, 5:13]
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = torch.softmax(x[:, 0].flatten(1)[:, :10] * 10, dim=1).topk(3, dim=1)
    torch.testing.assert_close(probs, expected.values)
    assert classes.dtype == torch.int32 and classes.equal(expected.indices.to(torch.int32))
    # A portrait image: the width is the short side.
    probs, _ = pipe(images.transpose(1, 2).contiguous())
    assert probs.shape == (2, 3)


def test_detection_pipeline_letterboxes_like_yolox_and_returns_boxes_in_image_pixels():
    images = torch.full((1, 480, 640, 3), 200, dtype=torch.uint8)
    images[..., 0] = 10  # red; the model sees BGR, so channel 0 is blue (200)
    seen = {}

    class Spy(PixelDetections):
        def forward(self, x):
            seen["x"] = x
            return super().forward(x)

    boxes, scores = build_detection_pipeline(Spy(), PREPROCESSING["yolox_s"])(images)
    x = seen["x"]
    assert x.shape == (1, 3, 640, 640)
    # 640x480 is already 640 on the long side: the image fills rows 0..479, padding 114 below.
    assert x[0, :, :480].amin() == 10 and x[0, 0, :480].amin() == 200  # BGR: blue first
    assert (x[0, :, 480:] == 114).all()
    torch.testing.assert_close(boxes[0, 0], torch.tensor([270.0, 215.0, 370.0, 265.0]))  # ratio 1
    torch.testing.assert_close(scores[0, 0], torch.tensor([0.5 * 200 / 255, 0.5 * 200 / 255]))
    torch.testing.assert_close(scores[0, 1], torch.tensor([0.5 * 114 / 255, 0.5 * 114 / 255]))  # bottom row: padding
    # A 320x240 image is scaled by 2: boxes come back halved, in the image's pixels.
    small = torch.full((2, 240, 320, 3), 50, dtype=torch.uint8)
    boxes, scores = build_detection_pipeline(PixelDetections(), PREPROCESSING["yolox_s"])(small)
    torch.testing.assert_close(boxes[1, 0], torch.tensor([135.0, 107.5, 185.0, 132.5]))
    assert scores.shape == (2, 2, 2)


class BothPipelines(torch.nn.Module):
    """A bicubic classification pipeline and the letterbox pipeline on the same images, exported as
    one graph (the exporter's fixed cost paid once)."""

    def __init__(self) -> None:
        super().__init__()
        self.classify = build_classification_pipeline(PixelLogits(), Preprocessing("crop", 8, 12, "bicubic"))
        self.detect = build_detection_pipeline(PixelDetections(), Preprocessing("letterbox", 64))

    def forward(self, images):
        return (*self.classify(images), *self.detect(images))


@pytest.mark.slow
def test_pipelines_export_to_onnx_with_a_dynamic_batch(tmp_path):
    def make(n):
        return torch.randint(0, 256, (n, 30, 45, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(n))

    assert_onnx_matches(BothPipelines().eval(), make, tmp_path / "pipelines.onnx",
                        output_names=("top5_prob", "top5_class", "boxes", "scores"))


def test_describe_picks_each_workloads_data_set_and_the_boundarys_outputs():
    assert describe(SUITE.get("resnet50"), opts())["dataset"] == "ImageNet-1k validation"
    yolo = describe(SUITE.get("yolox_s"), opts(boundary="pipeline"))
    assert yolo["dataset"] == "COCO val2017" and yolo["native_hw"] == [480, 640]
    assert yolo["outputs"] == ["boxes", "scores"] and "outside the boundary" in yolo["nms"]
    assert describe(SUITE.get("vit_b16"), opts(dataset="coco", boundary="pipeline"))["outputs"] == [
        "top5_prob", "top5_class"]
    assert set(DATASETS) == {"imagenet", "coco"}


def test_pipeline_instance_on_a_folder_of_the_users_images(tmp_path, monkeypatch):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    check_options(SUITE, opts(boundary="pipeline", data_path=str(folder)))
    # A light stand-in model keeps the test fast; the instance wiring is the suite's own.
    monkeypatch.setattr(type(SUITE.get("resnet50")), "build", lambda self, seed: PixelLogits())
    instance = SUITE.make(SUITE.get("resnet50"), 3, 0, opts(boundary="pipeline", data_path=str(folder)))
    (images,) = instance.inputs
    assert images.shape == (3, 50, 70, 3) and images.dtype == torch.uint8
    assert images.equal(load_images(str(folder), 3))
    probs, classes = instance.model(images)
    assert probs.shape == classes.shape == (3, 5)
    assert instance.info["image_hw"] == [50, 70] and instance.info["data_path"] == str(folder)


@pytest.mark.parametrize(
    "options, key, problem",
    [
        (opts(dataset="mvtec_ad"), "suite.dataset", "is not a data set of the vision suite"),
        (opts(boundary="camera"), "suite.boundary", "is not a measurement boundary"),
        (opts(tile_size=512), "suite.tile_size", "applies to data sets processed as tiles"),
        (opts(data_path="/x"), "data.path", "needs the pipeline boundary"),
        (opts(boundary="pipeline", data_path="/does/not/exist"), "data.path", "does not exist"),
    ],
)
def test_bad_options_are_refused(options, key, problem):
    with pytest.raises(SuiteOptionError) as info:
        check_options(SUITE, options)
    assert info.value.key == key and problem in str(info.value)


def test_bad_option_through_the_cli_is_one_line_and_exit_2(in_tmp, capsys):
    assert main(["run", "suite=vision", "suite.dataset=kitti"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "suite.dataset='kitti' is not a data set of the vision suite" in err[0]
    assert list(in_tmp.iterdir()) == []


@pytest.mark.slow
def test_bench_run_suite_vision_end_to_end(in_tmp):
    """One real run of the smallest default workload (MobileNetV3-Large, 0.43 GFLOP) with the shortest
    scenario settings: the suite, its config and the worker fit together."""
    args = ["run", "suite=vision", "suite.only=[mobilenetv3_large]", "scenario.warmup_iterations=1",
            "scenario.warmup_s=0.01", "scenario.min_iterations=3", "scenario.min_duration_s=0.05",
            "scenario.max_duration_s=0.3", "sensors.enabled=false"]
    proc = subprocess.run([sys.executable, "-m", "bench.cli.main", *args], cwd=in_tmp, capture_output=True, text=True,
                          env=os.environ.copy(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    (path,) = list((in_tmp / "results" / "records").rglob("*.json"))
    record = json.loads(path.read_text())
    assert record["status"] == "ok" and record["parity"]["ok"]
    workload = record["workload"]
    assert workload["suite"] == "vision" and workload["name"] == "mobilenetv3_large"
    assert workload["task"] == "image classification" and workload["dataset"] == "ImageNet-1k validation"
    assert math.isclose(workload["flops_per_sample"], 433_179_520, rel_tol=1e-6)
    assert workload["params"] == 5_483_032
