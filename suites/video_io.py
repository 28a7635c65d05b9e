"""Compressed video in, model outputs out: the video suite's `pipeline` measurement boundary.

What a camera system does after the last frame of a clip arrives, as one torch module around the
model (``VideoPipeline``): decode the clip's compressed frames (H.264 in MP4, with PyAV, which ships its
own FFmpeg), keep every ``stride``-th frame (frame sampling), scale the short side, crop the centre,
normalise, infer. The clip is decoded from memory (an MP4 made once per work item, seeded, at the data
set's resolution and frame rate, or the user's own files read before any timing), never from disk:
the disk is not the hardware under test. All the clip's frames are decoded after the last one arrived
(a recorder that hands over compressed segments); a system that decodes each frame on arrival pays
only the last frame's share, so this boundary's latency is the upper of the two.

A stream workload (MoViNet in stream mode, the pose-to-ST-GCN skeleton stream) takes one frame per call:
its in-memory MP4 holds one frame, an intra-coded frame, which costs more to decode than the
predicted frames that make up most of a real stream (an upper bound again).

Decoding is Python and FFmpeg, not tensor operations: only PyTorch's eager backends (cpu, cuda) run this
boundary; an ONNX export of it stops with an error saying so (use ``suite.boundary=model`` there).
PyAV (``av``, the ``video`` extra) and torch are imported only when a pipeline is built or a folder checked.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from bench.suites.base import SuiteOptionError

__all__ = ["VIDEO_SUFFIXES", "ClipSpec", "list_videos", "check_video_folder", "load_videos", "synthetic_frames",
           "encode_mp4", "synthetic_video", "decode_frames", "build_video_pipeline", "pack", "available_codec",
           "INSTALL_AV"]

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v")
INSTALL_AV = "install PyAV: pip install -c constraints.txt 'bench[video]'"


@dataclass(frozen=True)
class ClipSpec:
    """How a workload's clip is cut from the video and preprocessed."""

    frames: int  # frames the model sees (1: a stream model, one frame per call)
    stride: int  # sampling stride: every stride-th decoded frame is kept
    short_side: int  # the short side is scaled to this before the centre crop
    crop: int | tuple[int, int]  # centre crop (square, or (height, width))
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    stream: bool = False  # one frame per call, with state carried between calls

    @property
    def span(self) -> int:
        """Decoded frames per clip: the sampled ones and those skipped between them."""
        return 1 if self.stream else self.frames * self.stride


def list_videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def check_video_folder(path: str) -> tuple[int, int]:
    """The folder exists and holds videos PyAV can open, of one frame size; returns (H, W)."""
    folder = Path(path).expanduser()
    fix = f"give a folder of video files ({', '.join(VIDEO_SUFFIXES)}), e.g. data.path=/data/ward3/camera1"
    if not folder.is_dir():
        raise SuiteOptionError("data.path", path, fix, "does not exist or is not a folder")
    files = list_videos(folder)
    if not files:
        raise SuiteOptionError("data.path", path, fix, f"holds no video file ({', '.join(VIDEO_SUFFIXES)})")
    try:
        import av
    except ImportError:
        raise SuiteOptionError("data.path", path, INSTALL_AV, "needs PyAV (the av package) to decode video") from None
    sizes = set()
    for file in files[:16]:  # enough to catch a mixed folder without opening an archive's every file
        try:
            with av.open(str(file)) as container:
                if not container.streams.video:
                    raise ValueError("no video stream")
                frame = next(container.decode(video=0))
                sizes.add((frame.height, frame.width))
        except (av.FFmpegError, ValueError, StopIteration, OSError) as exc:
            raise SuiteOptionError("data.path", path, "remove or fix that file",
                                   f"holds {file.name}, which PyAV cannot decode ({exc or type(exc).__name__})") from None
    if len(sizes) > 1:
        listed = ", ".join(f"{w}x{h}" for h, w in sorted(sizes))
        raise SuiteOptionError("data.path", path, "keep videos of one frame size per folder (one camera)",
                               f"holds videos of several frame sizes ({listed})")
    return sizes.pop()


def available_codec() -> str:
    """libx264 (H.264) where this PyAV's FFmpeg has it (the PyPI wheels do), else mpeg4 (MPEG-4 Part 2)."""
    import av

    try:
        av.codec.Codec("libx264", "w")
        return "libx264"
    except Exception:  # noqa: BLE001 - PyAV raises its own UnknownCodecError, or a plain ValueError in older ones
        return "mpeg4"


def synthetic_frames(count: int, height: int, width: int, seed: int) -> Any:
    """Seeded uint8 frames (count, H, W, 3) that compress like camera video: a fixed textured
    background, a few moving blocks, mild sensor noise. Pure noise would make every frame an
    incompressible key frame and decoding far slower than a real camera's stream."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([(xx * (0.2 + 0.3 * c) + yy * (0.5 - 0.1 * c)) % 256 for c in range(3)], axis=-1)
    background = (background * 0.6 + rng.integers(0, 60, (height, width, 3))).astype(np.float32)
    blocks = [(rng.integers(0, height), rng.integers(0, width), rng.integers(-6, 7), rng.integers(-6, 7),
               rng.integers(0, 256, 3)) for _ in range(4)]
    side = max(8, min(height, width) // 6)
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for t in range(count):
        frame = background.copy()
        for y0, x0, dy, dx, colour in blocks:
            y, x = int(y0 + dy * t) % max(1, height - side), int(x0 + dx * t) % max(1, width - side)
            frame[y:y + side, x:x + side] = colour
        frame += rng.normal(0.0, 2.0, frame.shape).astype(np.float32)
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


def encode_mp4(frames: Any, fps: int, codec: Optional[str] = None) -> bytes:
    """``frames`` (T, H, W, 3) uint8 encoded as an MP4 in memory (H.264 by default, yuv420p)."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream(codec or available_codec(), rate=fps)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush the encoder's delayed frames
            container.mux(packet)
    return buffer.getvalue()


@functools.lru_cache(maxsize=8)
def synthetic_video(count: int, height: int, width: int, fps: int, seed: int) -> bytes:
    """A seeded synthetic MP4 of ``count`` frames, made once per process and shape."""
    return encode_mp4(synthetic_frames(count, height, width, seed), fps)


def decode_frames(data: bytes, span: int, stride: int) -> Any:
    """Decode the first ``span`` frames of an in-memory video and keep every ``stride``-th as RGB:
    (span // stride, H, W, 3) uint8. Every frame is decoded (a predicted frame needs its references);
    only the kept ones are converted to RGB. A video shorter than the span repeats its last frame."""
    import av
    import numpy as np

    kept = []
    with av.open(io.BytesIO(data)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % stride == 0:
                kept.append(frame.to_ndarray(format="rgb24"))
            if index + 1 >= span:
                break
    if not kept:
        raise ValueError("the video holds no decodable frame")
    wanted = max(1, span // stride)
    kept += [kept[-1]] * (wanted - len(kept))
    return np.stack(kept[:wanted])


def pack(videos: Sequence[bytes]) -> tuple[Any, Any]:
    """Encoded videos as tensors a backend can carry: (N, longest) uint8, zero-padded, and (N,) lengths."""
    import numpy as np
    import torch

    longest = max(len(v) for v in videos)
    data = np.zeros((len(videos), longest), dtype=np.uint8)
    for i, video in enumerate(videos):
        data[i, :len(video)] = np.frombuffer(video, dtype=np.uint8)
    return torch.from_numpy(data), torch.tensor([len(v) for v in videos], dtype=torch.int64)


def load_videos(path: str, batch_size: int) -> list[bytes]:
    """The folder's video files' bytes, cycling when it holds fewer than the batch (read before timing)."""
    files = list_videos(Path(path).expanduser())
    return [files[i % len(files)].read_bytes() for i in range(batch_size)]


def build_video_pipeline(model: Any, clip: ClipSpec, kind: str = "clip") -> Any:
    """``model`` wrapped with decoding and preprocessing. ``kind``: "clip" (forward(data, lengths) ->
    the model's outputs), "stream" (forward(data, lengths, *state): one frame, state passed through),
    "pose" (one frame, scaled and cropped to the crop size, to an image model), or "skeleton" (one
    frame, two person crops of the crop size, the pose window passed through)."""
    import torch
    import torch.nn.functional as F
    from torch import Tensor, nn

    @torch.compiler.disable  # Python and FFmpeg: torch.compile runs it eagerly and compiles the rest
    def decode_batch(data: Tensor, lengths: Tensor) -> Tensor:
        import numpy as np

        host, sizes = data.cpu().numpy(), lengths.cpu().tolist()
        return torch.from_numpy(np.stack([decode_frames(host[i, :sizes[i]].tobytes(), clip.span, clip.stride)
                                          for i in range(len(sizes))]))

    class VideoPipeline(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("mean", torch.tensor(clip.mean).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(clip.std).view(1, 3, 1, 1), persistent=False)

        def _frames(self, data: Tensor, lengths: Tensor) -> Tensor:
            if torch.compiler.is_exporting():
                raise RuntimeError("suite.boundary=pipeline decodes video with PyAV in Python, which cannot be "
                                   "exported: run it on backend=cpu or cuda, or use suite.boundary=model")
            frames = decode_batch(data, lengths).to(self.mean.device)  # (N, T, H, W, 3) uint8
            n, t, height, width, _ = frames.shape
            x = frames.reshape(n * t, height, width, 3).permute(0, 3, 1, 2).to(self.mean.dtype) / 255.0
            return x.reshape(n, t, 3, height, width)

        def _scale_crop(self, x: Tensor, short_side: int, crop: tuple[int, int]) -> Tensor:
            """(B, 3, H, W) in [0, 1] -> short side scaled, centre crop, normalised."""
            height, width = x.shape[-2:]
            scale = short_side / min(height, width)
            size = (max(crop[0], round(height * scale)), max(crop[1], round(width * scale)))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
            top, left = (size[0] - crop[0]) // 2, (size[1] - crop[1]) // 2
            x = x[:, :, top:top + crop[0], left:left + crop[1]]
            return (x - self.mean) / self.std

        def forward(self, data: Tensor, lengths: Tensor, *state: Tensor) -> Any:
            frames = self._frames(data, lengths)
            n, t = frames.shape[:2]
            if kind == "skeleton":
                # Two people: the frame's left and right halves stand in for a person detector's boxes.
                half = frames.shape[-1] // 2
                people = torch.stack((frames[:, 0, :, :, :half], frames[:, 0, :, :, half:2 * half]), dim=1)
                crop_hw = clip.crop if isinstance(clip.crop, tuple) else (clip.crop, clip.crop)
                crops = F.interpolate(people.flatten(0, 1), size=crop_hw, mode="bilinear", align_corners=False,
                                      antialias=True)
                crops = ((crops - self.mean) / self.std).reshape(n, 2, 3, *crop_hw)
                return self.model(crops, *state)
            crop = clip.crop if isinstance(clip.crop, tuple) else (clip.crop, clip.crop)
            x = self._scale_crop(frames.flatten(0, 1), clip.short_side, crop)
            x = x.reshape(n, t, 3, *crop).transpose(1, 2)  # (N, 3, T, crop, crop)
            if kind == "pose":  # an image model: one frame, no time axis
                x = x[:, :, 0]
            return self.model(x, *state)

    return VideoPipeline().eval()
