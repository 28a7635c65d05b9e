"""Visual anomaly detection on inspection lines: the model families industrial users run, on inputs
shaped like the data sets they represent. Builders are import paths; torch is imported only in the
worker (and by `bench list` to count parameters and FLOPs).

Options (from the suite config): ``dataset`` (mvtec_ad, visa, mvtec_ad_2), ``boundary`` (``model``:
a preprocessed tensor in, map and score out; ``pipeline``: a uint8 image of the data set's native
size in, resize or tiling, normalisation, inference, map upsampled to the image, score),
``tile_size`` (MVTec AD 2's tiles in the pipeline; at the model boundary a sample is one tile of the
model's input size), and ``data_path`` (the user's own images, pipeline only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from bench.suites.base import Instance, Suite, SuiteOptionError, Workload, choose

__all__ = ["SUITE", "DATASETS", "DataSet", "BOUNDARIES"]

BOUNDARIES = ("model", "pipeline")


@dataclass(frozen=True)
class DataSet:
    key: str
    name: str
    native_hw: tuple[int, int]  # a representative image (height, width) of the data set
    sizes: str  # what the data set's images actually measure
    handling: str  # "resize" to the model's input, or "tile" at the model's input size
    licence: str

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.name, "dataset_key": self.key, "native_hw": list(self.native_hw),
                "native_sizes": self.sizes, "dataset_handling": self.handling, "dataset_licence": self.licence}


DATASETS = {
    # 15 categories; most images are 1024x1024 (others 700, 800, 840, 900, 1000 px square).
    "mvtec_ad": DataSet("mvtec_ad", "MVTec AD", (1024, 1024), "square, 700-1024 px", "resize",
                        "CC BY-NC-SA 4.0"),
    # 12 subsets of about 1.5k x 1k px images (e.g. PCB boards, capsules, candles).
    "visa": DataSet("visa", "VisA", (1000, 1500), "about 1500x1000 px", "resize", "CC BY 4.0"),
    # About 5 MP per image; too large to resize without losing small defects, so processed as tiles.
    "mvtec_ad_2": DataSet("mvtec_ad_2", "MVTec AD 2", (2048, 2448), "about 5 MP (2448x2048 px)", "tile",
                          "CC BY-NC-SA 4.0"),
}
DEFAULT_DATASET = "mvtec_ad"
_ANOMALIB = "Apache-2.0 (anomalib reference implementation)"


TASK = "anomaly detection"
DOMAIN = "manufacturing inspection"


def _w(name: str, family: str, builder: str, size: int, tier: int, reference: str, category: str, *,
       norm: str = "imagenet", resize: Optional[int] = None, description: str = "",
       licence: str = _ANOMALIB) -> Workload:
    crop = f"resize to {resize}, centre crop {size}" if resize else f"resize to {size}x{size}"
    norm_text = "ImageNet mean/std" if norm == "imagenet" else "[0, 1] image (no ImageNet normalisation)"
    return Workload(
        name=name, family=family, builder=builder, input_shape=(3, size, size), dataset="MVTec AD",
        preprocessing=f"{crop}; {norm_text}", latency_tier_ms=tier, licence=licence, reference=reference,
        input_norm=norm, resize=resize, description=description, task=TASK, domain=DOMAIN, category=category,
        # The size the papers report their results at (and anomalib trains at): smaller inputs lose the
        # small defects the methods are tuned for.
        min_resolution=f"{size}x{size}", dataset_licence=DATASETS[DEFAULT_DATASET].licence,
    )


_EFFICIENTAD = "Batzner et al., EfficientAD, WACV 2024; anomalib efficient_ad"
# Categories by architecture, "CNN, <how the score is made>": `bench list category=flow` or
# category=student finds a kind of method; category=cnn finds them all.
_STUDENT = "CNN, student-teacher"
_GAUSSIAN = "CNN, Gaussian embedding"
_RECONSTRUCTION = "CNN, reconstruction"
WORKLOADS = (
    # EfficientAD normalises inside the model (anomalib's convention): the pipeline only scales to [0, 1].
    _w("efficientad_s", "EfficientAD", "bench.suites.models.efficientad:build_efficientad_s", 256, 20, _EFFICIENTAD,
       _STUDENT, norm="none", description="PDN-S teacher, student and autoencoder; anomaly map and image score"),
    _w("efficientad_m", "EfficientAD", "bench.suites.models.efficientad:build_efficientad_m", 256, 50, _EFFICIENTAD,
       _STUDENT, norm="none", description="PDN-M teacher, student and autoencoder; anomaly map and image score"),
    _w("patchcore", "PatchCore", "bench.suites.models.patchcore:build_patchcore", 224, 100,
       "Roth et al., PatchCore, CVPR 2022; anomalib patchcore", "CNN, memory bank (k-NN)", resize=256,
       description="WRN-50-2 layer2+3, 3x3 averaging, k-NN against a 10% coreset memory bank, reweighted score"),
    _w("padim_resnet18", "PaDiM", "bench.suites.models.padim:build_padim_resnet18", 256, 50,
       "Defard et al., PaDiM, ICPR 2021; anomalib padim", _GAUSSIAN,
       description="ResNet-18 layers 1-3, 100 random channels, Mahalanobis distance per position"),
    _w("padim_wrn50", "PaDiM", "bench.suites.models.padim:build_padim_wrn50", 256, 100,
       "Defard et al., PaDiM, ICPR 2021; anomalib padim", _GAUSSIAN,
       description="WRN-50-2 layers 1-3, 550 channels; memory-bound (about 5 GB of inverse covariance)"),
    _w("fastflow", "FastFlow", "bench.suites.models.fastflow:build_fastflow", 256, 50,
       "Yu et al., FastFlow, 2021; anomalib fastflow", "CNN, normalizing flow",
       description="ResNet-18 layers 1-3, 8 affine-coupling flow steps per scale"),
    _w("stfpm", "STFPM", "bench.suites.models.stfpm:build_stfpm", 256, 20,
       "Wang et al., STFPM, BMVC 2021; anomalib stfpm", _STUDENT,
       description="ResNet-18 teacher and student, layers 1-3, feature-pyramid cosine distance"),
    _w("reverse_distillation", "Reverse Distillation", "bench.suites.models.reverse_distillation:build_reverse_distillation",
       256, 100, "Deng & Li, Reverse Distillation, CVPR 2022; anomalib reverse_distillation; hq-deng/RD4AD", _STUDENT,
       description="WRN-50-2 encoder, one-class bottleneck embedding, mirrored decoder"),
    _w("draem", "DRAEM", "bench.suites.models.draem:build_draem", 256, 100,
       "Zavrtanik et al., DRAEM, ICCV 2021; anomalib draem; VitjanZ/DRAEM", _RECONSTRUCTION, norm="none",
       licence="Apache-2.0 (anomalib); the authors' code is MIT",
       description="reconstructive and discriminative sub-networks on the raw image"),
    _w("autoencoder", "Autoencoder", "bench.suites.models.autoencoder:build_conv_autoencoder", 256, 20,
       "this project's baseline convolutional autoencoder (no reference implementation)", _RECONSTRUCTION,
       norm="none",
       licence="Apache-2.0 (this project's own design)",
       description="4 strided conv blocks, 64-channel latent, mirrored decoder; blurred squared error"),
)


def _options(options: dict[str, Any]) -> tuple[DataSet, str, int, Optional[str]]:
    dataset = DATASETS[options.get("dataset") or DEFAULT_DATASET]
    tile = options.get("tile_size")
    return dataset, options.get("boundary") or "model", 256 if tile is None else int(tile), \
        options.get("data_path") or None


def check_options(suite: Suite, options: dict[str, Any]) -> None:
    choose("suite.dataset", options.get("dataset"), DEFAULT_DATASET, DATASETS, "is not a known data set")
    boundary = choose("suite.boundary", options.get("boundary"), "model", BOUNDARIES, "is not a measurement boundary")
    dataset, _, tile, data_path = _options(options)
    if data_path is not None and boundary != "pipeline":
        raise SuiteOptionError("data.path", data_path, "add suite.boundary=pipeline (images in, map and score out)",
                               "needs the pipeline boundary")
    height, width = dataset.native_hw
    if data_path is not None:
        from bench.suites.images import check_image_folder

        height, width = check_image_folder(data_path)
    if dataset.handling == "tile":
        if tile < 32:
            raise SuiteOptionError("suite.tile_size", tile, "give at least 32 pixels (256 is usual)", "is too small")
        if tile > min(height, width):
            raise SuiteOptionError("suite.tile_size", tile, f"give at most {min(height, width)} for "
                                   f"{width}x{height} images", "is larger than the image")


def describe(workload: Workload, options: dict[str, Any]) -> dict[str, Any]:
    dataset, boundary, tile, data_path = _options(options)
    info: dict[str, Any] = {**dataset.describe(), "boundary": boundary}
    if dataset.handling == "tile":
        from bench.suites.images import describe_tiles

        if boundary == "model":
            tile = workload.input_shape[-1]  # at the model boundary a tile is exactly a model input
        height, width = dataset.native_hw
        info.update(describe_tiles(height, width, tile))
        info["preprocessing"] = f"{tile}x{tile} tiles of the image" + (
            f", each resized to {workload.input_shape[-1]}" if tile != workload.input_shape[-1] else "") + \
            f"; {workload.preprocessing.split('; ', 1)[-1]}"
    if data_path:
        info["data_path"] = data_path
    return info


def instantiate(workload: Workload, batch_size: int, seed: int, options: dict[str, Any]) -> Instance:
    dataset, boundary, tile, data_path = _options(options)
    model = workload.build(seed)
    info = describe(workload, options)
    size = workload.input_shape[-1]
    if boundary == "model":
        info["sample"] = "one tile" if dataset.handling == "tile" else "one preprocessed image"
        info["model_runs_per_sample"] = 1
        return Instance(model, workload.make_inputs(batch_size, seed), info)

    from bench.suites.images import build_pipeline, describe_tiles, load_images, synthetic_images

    if data_path:
        images = load_images(data_path, batch_size)
    else:
        images = synthetic_images(batch_size, *dataset.native_hw, seed=seed)
    height, width = int(images.shape[1]), int(images.shape[2])
    tiled = dataset.handling == "tile"
    pipeline = build_pipeline(model, size, workload.resize, workload.input_norm, tile if tiled else None)
    info["sample"] = "one uint8 image of the data set's native size"
    info["image_hw"] = [height, width]
    info["model_runs_per_sample"] = describe_tiles(height, width, tile)["tiles_per_image"] if tiled else 1
    return Instance(pipeline, (images,), info)


SUITE = Suite(
    name="anomaly",
    description="Visual anomaly detection on inspection lines (MVTec AD, VisA, MVTec AD 2)",
    workloads=WORKLOADS,
    instantiate=instantiate,
    check_options=check_options,
    describe=describe,
)
