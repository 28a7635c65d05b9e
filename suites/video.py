"""Situation analysis in health care: fall detection and activity recognition on ward and home cameras.
Clip models (X3D, R(2+1)D, VideoMAE), a streaming model that carries its causal state between frames
(MoViNet-A0 stream), and a skeleton model on pose sequences (ST-GCN) with a per-frame pose estimator in
front of it at the pipeline boundary. Builders are import paths; torch is imported only in the worker
(and by `bench list` to count parameters and FLOPs).

Options (from the suite config): ``dataset`` (kinetics400, ntu_rgbd, ur_fall, toyota_smarthome: the
resolution and frame rate of the video at the pipeline boundary), ``boundary`` (``model``: a
preprocessed clip, frame or pose sequence in, logits out; ``pipeline``: compressed video in memory in,
decoding, frame sampling, short-side scale, centre crop, normalisation and the model timed together;
bench.suites.video_io), ``data_path`` (a folder of the user's video files, pipeline only).

What a sample is, and so what latency means: for a clip model, one clip, and its latency runs from the
arrival of the clip's last frame to the result; for a stream model, one frame with the state carried
(per-frame latency); for ST-GCN at the model boundary one 300-frame pose sequence, at the pipeline
boundary one frame (pose estimation of two people, then ST-GCN on the window of the last 300 frames'
poses, the window carried as state). ``scenario=multistream`` sends one request per clip per camera:
give it ``scenario.fps`` = the camera's frame rate over the clip's hop (``requests_per_s_per_camera`` in
the record; e.g. 30 fps cameras and X3D-XS's 48-frame clips: ``scenario.fps=0.625``), or the camera's
frame rate itself for a stream workload.

State: a stateful model takes its state as extra inputs and returns the new state as extra outputs (as a
streaming ONNX model does), so backends stay unaware of suites. The benchmark feeds the zero state of a
fresh stream on every call: the arithmetic, and so the time, does not depend on the state's values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from bench.suites.base import (IMAGENET_MEAN, IMAGENET_STD, Instance, Suite, SuiteOptionError, Workload,
                               choose)
from bench.suites.video_io import ClipSpec

__all__ = ["SUITE", "DATASETS", "DataSet", "BOUNDARIES", "CLIPS", "WORKLOADS"]

BOUNDARIES = ("model", "pipeline")


@dataclass(frozen=True)
class DataSet:
    key: str
    name: str
    native_hw: tuple[int, int]  # the representative frame (height, width) of the pipeline's video
    fps: int
    sizes: str  # what the data set's videos actually are
    licence: str

    def describe(self) -> dict[str, Any]:
        return {"dataset": self.name, "dataset_key": self.key, "native_hw": list(self.native_hw),
                "native_fps": self.fps, "native_sizes": self.sizes, "dataset_licence": self.licence}


DATASETS = {
    # About 300k 10-second YouTube clips of 400 actions; resolutions and frame rates vary with the upload.
    "kinetics400": DataSet("kinetics400", "Kinetics-400", (360, 640), 30,
                           "10 s YouTube clips, mostly 360p-720p at 24-30 fps (640x360 at 30 fps taken)",
                           "CC BY 4.0 (annotations); the videos stay under YouTube's terms"),
    # 56,880 samples of 60 actions by 40 people; Kinect v2 RGB at 1920x1080, 30 fps, 25-joint skeletons.
    "ntu_rgbd": DataSet("ntu_rgbd", "NTU RGB+D", (1080, 1920), 30,
                        "RGB 1920x1080 at 30 fps; skeletons of 25 joints, up to 2 people",
                        "ROSE Lab release agreement: non-commercial research only"),
    # 70 sequences (30 falls, 40 daily activities), Kinect and accelerometers, RGB 640x480 at 30 fps.
    "ur_fall": DataSet("ur_fall", "UR Fall Detection", (480, 640), 30, "RGB 640x480 at 30 fps",
                       "free for research use (University of Rzeszow's terms; no commercial licence stated)"),
    # 16,115 clips of 31 daily activities of elderly people at home, 7 Kinect cameras, 640x480 at 20 fps.
    "toyota_smarthome": DataSet("toyota_smarthome", "Toyota Smarthome", (480, 640), 20, "RGB 640x480 at 20 fps",
                                "non-commercial research only (Toyota Motor Europe / Inria release agreement)"),
}
DEFAULT_DATASET = "kinetics400"

KINETICS_MEAN, KINETICS_STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)  # X3D's (PySlowFast's)
TORCHVISION_VIDEO_MEAN = (0.43216, 0.394666, 0.37645)  # torchvision's Kinetics statistics (R(2+1)D)
TORCHVISION_VIDEO_STD = (0.22803, 0.22145, 0.216989)
UNIT = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # MoViNet takes frames in [0, 1]

CLIPS: dict[str, ClipSpec] = {
    "x3d_xs": ClipSpec(4, 12, 160, 160, KINETICS_MEAN, KINETICS_STD),
    "x3d_s": ClipSpec(13, 6, 160, 160, KINETICS_MEAN, KINETICS_STD),
    "x3d_m": ClipSpec(16, 5, 224, 224, KINETICS_MEAN, KINETICS_STD),
    "r2plus1d_18": ClipSpec(16, 2, 128, 112, TORCHVISION_VIDEO_MEAN, TORCHVISION_VIDEO_STD),
    "videomae_s": ClipSpec(16, 4, 224, 224, IMAGENET_MEAN, IMAGENET_STD),
    "movinet_a0_stream": ClipSpec(1, 1, 172, 172, *UNIT, stream=True),
    "st_gcn": ClipSpec(1, 1, 256, (256, 192), IMAGENET_MEAN, IMAGENET_STD, stream=True),
    "pose_resnet18": ClipSpec(1, 1, 256, (256, 192), IMAGENET_MEAN, IMAGENET_STD, stream=True),
}
SKELETON = (3, 300, 25, 2)  # NTU RGB+D: (x, y, z) of 25 joints, 300 frames, 2 people


def _clip_inputs(name: str) -> Callable[..., tuple[Any, ...]]:
    """Seeded model-boundary inputs: a clip in [0, 1] normalised as the pipeline would."""

    def make(batch_size: int, seed: int) -> tuple[Any, ...]:
        import torch

        clip = CLIPS[name]
        crop = clip.crop if isinstance(clip.crop, tuple) else (clip.crop, clip.crop)
        generator = torch.Generator().manual_seed(seed)
        x = torch.rand((batch_size, 3, clip.frames, *crop), generator=generator)
        mean, std = torch.tensor(clip.mean).view(1, 3, 1, 1, 1), torch.tensor(clip.std).view(1, 3, 1, 1, 1)
        return ((x - mean) / std,)

    make.__name__ = f"inputs_{name}"
    return make


inputs_x3d_xs = _clip_inputs("x3d_xs")
inputs_x3d_s = _clip_inputs("x3d_s")
inputs_x3d_m = _clip_inputs("x3d_m")
inputs_r2plus1d_18 = _clip_inputs("r2plus1d_18")
inputs_videomae_s = _clip_inputs("videomae_s")


def inputs_movinet_a0_stream(batch_size: int, seed: int) -> tuple[Any, ...]:
    """One frame in [0, 1] (N, 3, 1, 172, 172) and the packed zero state of a fresh stream (N, 1290321)."""
    from bench.suites.models.video.movinet import a0_stream_inputs

    return a0_stream_inputs(batch_size, seed)


def inputs_st_gcn(batch_size: int, seed: int) -> tuple[Any, ...]:
    """A seeded NTU RGB+D-shaped pose sequence (N, 3, 300, 25, 2), coordinates in metres-like units."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return (torch.randn((batch_size, *SKELETON), generator=generator),)


def inputs_pose_resnet18(batch_size: int, seed: int) -> tuple[Any, ...]:
    return _crop_inputs(batch_size, seed)


def _crop_inputs(batch_size: int, seed: int) -> tuple[Any, ...]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    crop = torch.rand((batch_size, 3, 256, 192), generator=generator)
    return ((crop - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),)


_KINETICS = "CC BY 4.0 (annotations); the videos stay under YouTube's terms"
_M = "bench.suites.models.video"
_V = "bench.suites.video"


def _w(name: str, family: str, builder: str, input_shape: tuple[int, ...], dataset: str, tier: int, licence: str,
       reference: str, category: str, description: str, *, outputs: tuple[str, ...] = ("logits",),
       task: str = "action recognition", dataset_licence: str = _KINETICS, min_resolution: str = "") -> Workload:
    clip = CLIPS[name]
    crop = clip.crop if isinstance(clip.crop, tuple) else (clip.crop, clip.crop)
    norm = "[0, 1]" if clip.mean == UNIT[0] else f"mean {clip.mean[0]:g}.., std {clip.std[0]:g}.."
    if name == "st_gcn":
        preprocessing = "pose sequence: 300 frames x 25 joints x 2 people (zero-padded), no image preprocessing"
    elif name == "pose_resnet18":
        preprocessing = "one person crop resized to 256x192; ImageNet mean/std"
    elif clip.stream:
        preprocessing = f"one frame: short side to {clip.short_side}, centre crop {crop[0]}x{crop[1]}; {norm}"
    else:
        preprocessing = (f"{clip.frames} frames, 1 in {clip.stride}; short side to {clip.short_side}, "
                         f"centre crop {crop[0]}x{crop[1]}; {norm}")
    return Workload(
        name=name, family=family, builder=builder, input_shape=input_shape, dataset=dataset,
        preprocessing=preprocessing, latency_tier_ms=tier, licence=licence, reference=reference, outputs=outputs,
        inputs=f"{_V}:inputs_{name}", input_norm="none", description=description, task=task,
        domain="health care (ward and home cameras)", category=category,
        min_resolution=min_resolution or f"{crop[1]}x{crop[0]}", dataset_licence=dataset_licence)


_X3D = "Feichtenhofer, X3D: Expanding Architectures for Efficient Video Recognition, CVPR 2020; facebookresearch/SlowFast"
_X3D_LICENCE = "Apache-2.0 (facebookresearch/SlowFast)"
WORKLOADS = (
    _w("x3d_xs", "X3D", f"{_M}.x3d:build_x3d", (3, 4, 160, 160), "Kinetics-400", 100, _X3D_LICENCE, _X3D, "CNN",
       "X3D-XS: 4 frames at 160 px, channelwise 3D convolutions, SE; 400-class logits"),
    _w("x3d_s", "X3D", f"{_M}.x3d:build_x3d", (3, 13, 160, 160), "Kinetics-400", 200, _X3D_LICENCE, _X3D, "CNN",
       "X3D-S: 13 frames at 160 px (X3D-XS's weights on a longer clip)"),
    _w("x3d_m", "X3D", f"{_M}.x3d:build_x3d", (3, 16, 224, 224), "Kinetics-400", 500, _X3D_LICENCE, _X3D, "CNN",
       "X3D-M: 16 frames at 224 px"),
    _w("r2plus1d_18", "R(2+1)D", f"{_M}.r2plus1d:build_r2plus1d_18", (3, 16, 112, 112), "Kinetics-400", 1000,
       "BSD-3-Clause (torchvision r2plus1d_18)",
       "Tran et al., A Closer Look at Spatiotemporal Convolutions for Action Recognition, CVPR 2018; torchvision",
       "CNN", "ResNet-18 with every 3D convolution factored into 2D spatial and 1D temporal; ~81 GFLOPs per clip"),
    _w("videomae_s", "VideoMAE", f"{_M}.videomae:build_videomae_s", (3, 16, 224, 224), "Kinetics-400", 2000,
       "CC BY-NC 4.0 (MCG-NJU/VideoMAE code and weights)",
       "Tong et al., VideoMAE: Masked Autoencoders are Data-Efficient Learners for Self-Supervised Video "
       "Pre-Training, NeurIPS 2022; MCG-NJU/VideoMAE", "transformer",
       "ViT-S/16 on 2x16x16 tubelets (1568 tokens), fine-tuned classifier; ~114 GFLOPs per clip"),
    _w("movinet_a0_stream", "MoViNet", f"{_M}.movinet:build_movinet_a0_stream", (3, 1, 172, 172), "Kinetics-600",
       33, "Apache-2.0 (tensorflow/models MoViNet)",
       "Kondratyuk et al., MoViNets: Mobile Video Networks for Efficient Video Recognition, CVPR 2021; "
       "tensorflow/models official/projects/movinet", "CNN",
       "A0 in stream mode: one 172 px frame per call; the causal convolutions' frame buffers and the "
       "cumulative pooling sums carried as one packed state input and output (1,290,321 values); per-frame "
       "latency (budget: one frame period at 30 fps)",
       outputs=("logits", "state")),
    _w("st_gcn", "ST-GCN", f"{_M}.stgcn:build_stgcn_ntu", SKELETON, "NTU RGB+D", 100,
       "BSD-2-Clause (yysijie/st-gcn)",
       "Yan, Xiong and Lin, Spatial Temporal Graph Convolutional Networks for Skeleton-Based Action Recognition, "
       "AAAI 2018; yysijie/st-gcn", "GCN",
       "10 spatial-temporal graph convolution units on 25-joint Kinect skeletons; 60-class logits. At the "
       "pipeline boundary: per frame, pose_resnet18 on 2 people, then ST-GCN on the last 300 frames' poses",
       dataset_licence=DATASETS["ntu_rgbd"].licence, min_resolution="25 joints x 300 frames"),
    _w("pose_resnet18", "SimpleBaseline", f"{_M}.pose:build_pose_resnet18", (3, 256, 192), "NTU RGB+D", 50,
       "MIT (microsoft/human-pose-estimation.pytorch)",
       "Xiao, Wu and Wei, Simple Baselines for Human Pose Estimation and Tracking, ECCV 2018; "
       "microsoft/human-pose-estimation.pytorch", "CNN",
       "ResNet-18 + 3 deconvolutions: 25 joint heatmaps of one 256x192 person crop, soft-argmax coordinates; "
       "the pose estimator in front of ST-GCN", outputs=("heatmaps", "joints"), task="pose estimation",
       dataset_licence="not applicable (no published weights for 25 NTU joints; seeded weights)"),
)
STREAM_KIND = {"movinet_a0_stream": "stream", "st_gcn": "skeleton", "pose_resnet18": "pose"}


def _options(options: dict[str, Any]) -> tuple[DataSet, str, str | None]:
    dataset = DATASETS[options.get("dataset") or DEFAULT_DATASET]
    return dataset, options.get("boundary") or "model", options.get("data_path") or None


def check_options(suite: Suite, options: dict[str, Any]) -> None:
    choose("suite.dataset", options.get("dataset"), DEFAULT_DATASET, DATASETS, "is not a known data set")
    boundary = choose("suite.boundary", options.get("boundary"), "model", BOUNDARIES, "is not a measurement boundary")
    data_path = options.get("data_path") or None
    if data_path is not None and boundary != "pipeline":
        raise SuiteOptionError("data.path", data_path, "add suite.boundary=pipeline (video files in, logits out)",
                               "needs the pipeline boundary")
    if boundary == "pipeline":
        import importlib.util

        if importlib.util.find_spec("av") is None:
            from bench.suites.video_io import INSTALL_AV

            raise SuiteOptionError("suite.boundary", boundary, INSTALL_AV, "needs PyAV (the av package) to decode video")
    if data_path is not None:
        from bench.suites.video_io import check_video_folder

        check_video_folder(data_path)


def describe(workload: Workload, options: dict[str, Any]) -> dict[str, Any]:
    dataset, boundary, data_path = _options(options)
    clip = CLIPS[workload.name]
    info: dict[str, Any] = {**dataset.describe(), "boundary": boundary}
    hop = clip.span  # consecutive clips do not overlap: a new clip every span frames
    info.update(clip_frames=clip.frames, sampling_stride=clip.stride, clip_span_frames=hop,
                clip_span_s=round(hop / dataset.fps, 4), requests_per_s_per_camera=round(dataset.fps / hop, 4))
    if workload.name == "st_gcn" and boundary == "model":
        info.update(clip_frames=SKELETON[1], sampling_stride=1, clip_span_frames=SKELETON[1],
                    clip_span_s=round(SKELETON[1] / dataset.fps, 4),
                    requests_per_s_per_camera=round(dataset.fps / SKELETON[1], 4))
    if boundary == "pipeline":
        info["timed"] = ("decode of the clip's frames from an in-memory MP4 (PyAV), sampling, short-side scale, "
                         "centre crop, normalisation and the model" if not clip.stream else
                         "decode of one frame from an in-memory MP4 (PyAV), preprocessing and the model")
        if workload.name == "st_gcn":
            info["preprocessing"] = ("one frame: its left and right halves as two person crops, each resized to "
                                     "256x192, ImageNet mean/std; pose_resnet18, then ST-GCN on 300 frames' poses")
    if data_path:
        info["data_path"] = data_path
    return info


def instantiate(workload: Workload, batch_size: int, seed: int, options: dict[str, Any]) -> Instance:
    dataset, boundary, data_path = _options(options)
    info = describe(workload, options)
    clip = CLIPS[workload.name]
    if boundary == "model":
        info["sample"] = {"movinet_a0_stream": "one frame (state carried)", "st_gcn": "one 300-frame pose sequence",
                          "pose_resnet18": "one person crop"}.get(workload.name, "one preprocessed clip")
        return Instance(workload.build(seed), workload.make_inputs(batch_size, seed), info)

    from bench.suites.video_io import build_video_pipeline, load_videos, pack, synthetic_video

    kind = STREAM_KIND.get(workload.name, "clip")
    if workload.name == "st_gcn":
        import torch

        from bench.suites.models.video.pose import build_skeleton_stream

        model = build_skeleton_stream(seed)
        state: tuple[Any, ...] = (torch.zeros((batch_size, SKELETON[0], SKELETON[1] - 1, *SKELETON[2:])),)
        info["params_note"] = "params and FLOPs are ST-GCN's alone; pose_resnet18 runs twice per frame in front of it"
    else:
        model = workload.build(seed)
        state = workload.make_inputs(batch_size, seed)[1:]  # a stream model's zero state
    if data_path:
        videos = load_videos(data_path, batch_size)
    else:
        height, width = dataset.native_hw
        videos = [synthetic_video(clip.span, height, width, dataset.fps, seed)] * batch_size
    data, lengths = pack(videos)
    info["sample"] = "one frame of compressed video" if clip.stream else f"one clip of {clip.span} compressed frames"
    info["encoded_bytes_per_sample"] = int(lengths.float().mean())
    from bench.suites.video_io import available_codec

    info["codec"] = "user's files" if data_path else available_codec()
    return Instance(build_video_pipeline(model, clip, kind), (data, lengths, *state), info)


SUITE = Suite(
    name="video",
    description="Situation analysis in health care: fall detection and activity recognition on ward and home "
                "cameras (Kinetics-400, NTU RGB+D, UR Fall, Toyota Smarthome)",
    workloads=WORKLOADS,
    instantiate=instantiate,
    check_options=check_options,
    describe=describe,
)
