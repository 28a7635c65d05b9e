"""The reference vision suite: the models published results use, so that a user can check bench
against a number they already trust (MLPerf Inference's ResNet-50 v1.5, the classifiers of the
papers everyone cites, a real-time detector). Builders are import paths; torch is imported only in
the worker (and by `bench list` to count parameters and FLOPs).

Options (from the suite config): ``dataset`` (``imagenet``: ImageNet-1k validation images, typically
500x375; ``coco``: COCO val2017, typically 640x480; empty: each workload's own), ``boundary``
(``model``: the preprocessed tensor in, the model's outputs out; ``pipeline``: a uint8 RGB image of
the data set's typical size in, the model's reference preprocessing, the model, and its
post-processing: softmax and top-5 for a classifier, boxes in image pixels and per-class scores for
the detector), and ``data_path`` (the user's own images, pipeline only). Non-maximum suppression is
outside both boundaries (see bench.suites.models.vision.yolox).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from bench.suites.anomaly import BOUNDARIES, DataSet
from bench.suites.base import IMAGENET_MEAN, IMAGENET_STD, Instance, Suite, SuiteOptionError, Workload

__all__ = ["SUITE", "DATASETS", "PREPROCESSING", "Preprocessing", "yolox_inputs", "build_classification_pipeline",
           "build_detection_pipeline"]

DATASETS = {
    # 50,000 JPEGs of various sizes; most are 500 px on the long side, 500x375 the most common.
    "imagenet": DataSet("imagenet", "ImageNet-1k validation", (375, 500), "various, typically 500x375 px", "resize",
                        "ImageNet terms of access (non-commercial research and education)"),
    # 5,000 JPEGs, at most 640 px on the long side, 640x480 the most common.
    "coco": DataSet("coco", "COCO val2017", (480, 640), "at most 640 px on the long side, typically 640x480",
                    "letterbox", "annotations CC BY 4.0; images from Flickr under their own licences"),
}
TILE_SIZE_DEFAULT = 256  # the schema's default of suite.tile_size, which this suite does not use


@dataclass(frozen=True)
class Preprocessing:
    """A model's reference preprocessing, from a uint8 RGB image.

    ``crop``: resize the short side to ``resize`` keeping the aspect ratio (``interpolation`` with
    antialiasing, as torchvision's and PIL's resize), centre-crop ``size``, scale to [0, 1],
    normalise with ImageNet's mean and std. ``letterbox``: resize (no antialiasing, as OpenCV's
    INTER_LINEAR) so the long side is ``size``, rounded to whole pixel values, RGB to BGR, pad
    bottom and right with 114 to ``size`` x ``size``, values kept in 0-255 (YOLOX's ``ValTransform``).
    """

    kind: str  # "crop" or "letterbox"
    size: int
    resize: int = 0
    interpolation: str = "bilinear"
    source: str = ""

    def describe(self) -> str:
        if self.kind == "crop":
            return (f"resize the short side to {self.resize} ({self.interpolation}, antialiased), centre crop "
                    f"{self.size}, ImageNet mean/std ({self.source})")
        return (f"letterbox: resize the long side to {self.size} (bilinear), pad with 114 to {self.size}x{self.size}, "
                f"BGR, 0-255 ({self.source})")


PREPROCESSING = {
    # MLPerf Inference's PyTorch profile (pre_process_imagenet_pytorch); its TensorFlow/ONNX profile resizes
    # with OpenCV's INTER_AREA and subtracts the mean only, which costs the same.
    "resnet50": Preprocessing("crop", 224, 256, "bilinear", "MLPerf Inference, imagenet_pytorch"),
    "mobilenetv3_large": Preprocessing("crop", 224, 256, "bilinear", "torchvision's weights"),
    "efficientnet_b0": Preprocessing("crop", 224, 256, "bicubic", "the TPU reference's crop padding 32; torchvision"),
    "vit_b16": Preprocessing("crop", 224, 256, "bilinear", "torchvision's weights"),
    "convnext_tiny": Preprocessing("crop", 224, 256, "bicubic", "the reference's crop_pct 0.875"),
    "yolox_s": Preprocessing("letterbox", 640, source="YOLOX's ValTransform"),
}

_MODELS = "bench.suites.models.vision"
_CLASSIFY = "image classification"
_DETECT = "object detection"
_GENERAL = "general-purpose vision (reference workload)"


def _classifier(name: str, family: str, module: str, builder: str, tier: int, category: str, licence: str,
                reference: str, description: str) -> Workload:
    pre = PREPROCESSING[name]
    return Workload(
        name=name, family=family, builder=f"{_MODELS}.{module}:{builder}", input_shape=(3, pre.size, pre.size),
        dataset=DATASETS["imagenet"].name, preprocessing=pre.describe(), latency_tier_ms=tier, licence=licence,
        reference=reference, outputs=("logits",), input_norm="imagenet", resize=pre.resize, description=description,
        task=_CLASSIFY, domain=_GENERAL, category=category, min_resolution=f"{pre.size}x{pre.size}",
        dataset_licence=DATASETS["imagenet"].licence,
    )


WORKLOADS = (
    _classifier("resnet50", "ResNet-50 v1.5", "resnet", "build_resnet50", 15, "CNN",
                "Apache-2.0 (MLPerf Inference reference); BSD-3-Clause (torchvision)",
                "He et al., Deep Residual Learning, CVPR 2016; MLPerf Inference resnet50-v1.5",
                "MLPerf Inference's image classifier: bottlenecks 3-4-6-3, stride on the 3x3 (v1.5); logits"),
    _classifier("mobilenetv3_large", "MobileNetV3", "mobilenetv3", "build_mobilenetv3_large", 10, "CNN",
                "Apache-2.0 (tensorflow/models); BSD-3-Clause (torchvision)",
                "Howard et al., Searching for MobileNetV3, ICCV 2019",
                "MobileNetV3-Large 1.0: inverted residuals, squeeze-excite, hard-swish; logits"),
    _classifier("efficientnet_b0", "EfficientNet", "efficientnet", "build_efficientnet_b0", 10, "CNN",
                "Apache-2.0 (tensorflow/tpu); BSD-3-Clause (torchvision)",
                "Tan & Le, EfficientNet, ICML 2019",
                "EfficientNet-B0: MBConv blocks with squeeze-excite, SiLU; logits"),
    _classifier("vit_b16", "Vision Transformer", "vit", "build_vit_b16", 50, "transformer",
                "Apache-2.0 (google-research/vision_transformer); BSD-3-Clause (torchvision)",
                "Dosovitskiy et al., An Image is Worth 16x16 Words, ICLR 2021",
                "ViT-B/16: 12 pre-norm encoder blocks of 768, 12 heads, 197 tokens; logits"),
    _classifier("convnext_tiny", "ConvNeXt", "convnext", "build_convnext_tiny", 20, "CNN",
                "MIT (facebookresearch/ConvNeXt); BSD-3-Clause (torchvision)",
                "Liu et al., A ConvNet for the 2020s, CVPR 2022",
                "ConvNeXt-T: 7x7 depthwise blocks 3-3-9-3, LayerNorm, GELU; logits"),
    Workload(
        name="yolox_s", family="YOLOX", builder=f"{_MODELS}.yolox:build_yolox_s", input_shape=(3, 640, 640),
        dataset=DATASETS["coco"].name, preprocessing=PREPROCESSING["yolox_s"].describe(), latency_tier_ms=33,
        licence="Apache-2.0 (Megvii-BaseDetection/YOLOX)",
        reference="Ge et al., YOLOX: Exceeding YOLO Series in 2021, arXiv:2107.08430; Megvii-BaseDetection/YOLOX",
        outputs=("detections",), inputs="bench.suites.vision:yolox_inputs", input_norm="none",
        description="YOLOX-S at 640x640, 80 COCO classes: decoded boxes (cx, cy, w, h), objectness and class "
                    "probabilities for 8400 anchor points; NMS is post-processing outside the boundary",
        task=_DETECT, domain=_GENERAL, category="CNN", min_resolution="640x640",
        dataset_licence=DATASETS["coco"].licence,
    ),
)

# What each boundary's outputs are, by task.
PIPELINE_OUTPUTS = {_CLASSIFY: ("top5_prob", "top5_class"), _DETECT: ("boxes", "scores")}


def yolox_inputs(batch_size: int, seed: int) -> tuple[Any, ...]:
    """Letterboxed images as YOLOX takes them: float32 pixel values in 0-255 (no normalisation)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return (torch.rand((batch_size, 3, 640, 640), generator=generator) * 255.0,)


def _options(workload: Workload, options: dict[str, Any]) -> tuple[DataSet, str, Optional[str]]:
    key = options.get("dataset") or ("coco" if workload.task == _DETECT else "imagenet")
    return DATASETS[key], options.get("boundary") or "model", options.get("data_path") or None


def check_options(suite: Suite, options: dict[str, Any]) -> None:
    key = options.get("dataset") or ""
    if key and key not in DATASETS:
        raise SuiteOptionError("suite.dataset", key, f"use one of {', '.join(DATASETS)} (or leave it empty: each "
                               "workload's own)", "is not a data set of the vision suite")
    boundary = options.get("boundary") or "model"
    if boundary not in BOUNDARIES:
        raise SuiteOptionError("suite.boundary", boundary, f"use one of {', '.join(BOUNDARIES)}",
                               "is not a measurement boundary")
    tile = options.get("tile_size")
    if tile is not None and int(tile) != TILE_SIZE_DEFAULT:
        raise SuiteOptionError("suite.tile_size", tile, "leave it out: the vision suite resizes whole images",
                               "applies to data sets processed as tiles (suite=anomaly suite.dataset=mvtec_ad_2)")
    data_path = options.get("data_path") or None
    if data_path is not None:
        if boundary != "pipeline":
            raise SuiteOptionError("data.path", data_path, "add suite.boundary=pipeline (images in, "
                                   "classes or boxes out)", "needs the pipeline boundary")
        from bench.suites.images import check_image_folder

        check_image_folder(data_path)


def describe(workload: Workload, options: dict[str, Any]) -> dict[str, Any]:
    dataset, boundary, data_path = _options(workload, options)
    info: dict[str, Any] = {**dataset.describe(), "boundary": boundary}
    if boundary == "pipeline":
        info["outputs"] = list(PIPELINE_OUTPUTS[workload.task])
    if workload.task == _DETECT:
        info["nms"] = "outside the boundary (post-processing; its cost depends on the boxes a trained model keeps)"
    if data_path:
        info["data_path"] = data_path
    return info


def instantiate(workload: Workload, batch_size: int, seed: int, options: dict[str, Any]) -> Instance:
    dataset, boundary, data_path = _options(workload, options)
    model = workload.build(seed)
    info = describe(workload, options)
    info["model_runs_per_sample"] = 1
    if boundary == "model":
        info["sample"] = "one preprocessed image"
        return Instance(model, workload.make_inputs(batch_size, seed), info)

    from bench.suites.images import load_images, synthetic_images

    if data_path:
        images = load_images(data_path, batch_size)
    else:
        images = synthetic_images(batch_size, *dataset.native_hw, seed=seed)
    pre = PREPROCESSING[workload.name]
    build = build_detection_pipeline if pre.kind == "letterbox" else build_classification_pipeline
    info["sample"] = "one uint8 RGB image of the data set's typical size"
    info["image_hw"] = [int(images.shape[1]), int(images.shape[2])]
    return Instance(build(model, pre), (images,), info)


def build_classification_pipeline(model: Any, pre: Preprocessing, top: int = 5) -> Any:
    """uint8 (N, H, W, 3) RGB images in; the top-``top`` softmax probabilities and their classes
    (int32) out. Sizes are fixed by the images' shape when the module is traced or exported."""
    import torch
    import torch.nn.functional as F
    from torch import Tensor, nn

    class ClassificationPipeline(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
            height, width = int(images.shape[1]), int(images.shape[2])
            x = images.permute(0, 3, 1, 2).to(self.mean.dtype) / 255.0
            # torchvision's Resize(int): the short side to `resize`, the long side in proportion, truncated.
            if height <= width:
                size = (pre.resize, int(pre.resize * width / height))
            else:
                size = (int(pre.resize * height / width), pre.resize)
            x = F.interpolate(x, size=size, mode=pre.interpolation, align_corners=False, antialias=True)
            top_px = int(round((size[0] - pre.size) / 2.0))  # torchvision's center_crop offsets
            left_px = int(round((size[1] - pre.size) / 2.0))
            x = x[:, :, top_px:top_px + pre.size, left_px:left_px + pre.size]
            logits = self.model((x - self.mean) / self.std)
            probs, classes = torch.softmax(logits, dim=1).topk(top, dim=1)
            return probs, classes.to(torch.int32)

    return ClassificationPipeline().eval()


def build_detection_pipeline(model: Any, pre: Preprocessing) -> Any:
    """uint8 (N, H, W, 3) RGB images in; boxes (N, A, 4) as (x1, y1, x2, y2) in the image's pixels and
    per-class scores (N, A, C) = objectness x class probability out, for every anchor point A: what
    YOLOX's ``postprocess`` computes before its score threshold and NMS."""
    import torch
    import torch.nn.functional as F
    from torch import Tensor, nn

    class DetectionPipeline(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
            height, width = int(images.shape[1]), int(images.shape[2])
            ratio = min(pre.size / height, pre.size / width)
            new_h, new_w = int(height * ratio), int(width * ratio)
            x = images.permute(0, 3, 1, 2).flip(1).to(torch.float32)  # RGB -> BGR, as YOLOX was trained
            x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False).round()
            x = F.pad(x, (0, pre.size - new_w, 0, pre.size - new_h), value=114.0)
            detections = self.model(x)
            centre, half = detections[..., :2], detections[..., 2:4] / 2
            boxes = torch.cat([centre - half, centre + half], dim=-1) / ratio
            scores = detections[..., 4:5] * detections[..., 5:]
            return boxes, scores

    return DetectionPipeline().eval()


SUITE = Suite(
    name="vision",
    description="Reference vision workloads (MLPerf's ResNet-50 v1.5, MobileNetV3, EfficientNet, ViT, ConvNeXt, "
                "YOLOX) on ImageNet and COCO",
    workloads=WORKLOADS,
    instantiate=instantiate,
    check_options=check_options,
    describe=describe,
)
