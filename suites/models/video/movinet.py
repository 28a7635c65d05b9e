"""MoViNet-A0 in stream mode (Kondratyuk et al., "MoViNets: Mobile Video Networks for Efficient Video
Recognition", CVPR 2021): one frame in, the class logits so far out, the causal state carried between
calls as extra inputs and outputs.

Layer shapes follow the paper's A0 search result as published in tensorflow/models
(``official/projects/movinet/modeling/movinet.py``, Apache-2.0) and its PyTorch port Atze00/MoViNet-pytorch
(MIT), read for shapes only: a 1x3x3 stem to 8 channels at spatial stride 2; five blocks of
inverted-bottleneck layers (1x1x1 expansion, a channelwise k_t x k x k convolution, squeeze-excitation,
1x1x1 projection; a 1x3x3 average pool and 1x1x1 projection on shortcuts that change shape) with
output widths 8, 32, 56, 56, 104; a 1x1x1 convolution to 480, global pooling, a 2048-wide hidden layer and
the 600 classes of Kinetics-600 (the published A0 is trained there). Swish activations and sigmoid
gating (the TensorFlow defaults); 3D channelwise kernels (the stream checkpoints of the larger models
factor them (2+1)D; not built here). Squeeze-excitation pools with the paper's cumulative global
average (``se_multiplier=1``): 3,111,784 parameters, the paper's 3.1 M; 50 frames at 172 px cost 2.65 G
multiply-accumulates against the paper's 2.7 GFLOPs (2% fewer: the padding of the published model,
TensorFlow's 'same', differs at odd sizes). ``se_multiplier=2`` is the PyTorch port's stream variant
(the cumulative and the frame's own spatial mean concatenated: 3,783,968 parameters).

Causality, which is what makes streaming possible: every temporal convolution pads only on the past
(its state is the last k_t - 1 input frames), squeeze-excitation pools over space per frame and over
time cumulatively (its state is the running sum), and the head averages cumulatively too (a running
sum and the frame count). Run on a clip of T frames from the zero state, the model gives the same
logits for its last frame as T calls of one frame each with the state carried (the tests check it).

``forward(frames, state) -> (logits, new_state)``. ``frames`` is (N, 3, T, H, W) with T = 1 in stream
mode; ``state`` is every part of the causal state (``state_shapes``) flattened and packed into one
(N, S) tensor, all zeros at the start of a stream (``initial_state``): for A0 at 172 px, S = 1,290,321 values
per stream (5.2 MB in fp32). A backend never needs to know this: the state is one more input and
output, as in a streaming ONNX model; packing costs one copy of it per call.
The benchmark feeds the same (zero) state on every call; the arithmetic, and so the time, does not
depend on the state's values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MoViNetStream", "build_movinet_a0_stream", "A0_BLOCKS", "LayerSpec", "make_divisible"]


@dataclass(frozen=True)
class LayerSpec:
    n_in: int
    n_out: int
    expanded: int
    kernel: tuple[int, int, int]  # (t, h, w)
    stride: int = 1  # spatial stride


def _l(n_in: int, n_out: int, expanded: int, kernel: tuple[int, int, int], stride: int = 1) -> LayerSpec:
    return LayerSpec(n_in, n_out, expanded, kernel, stride)


A0_STEM = 8
A0_BLOCKS: tuple[tuple[LayerSpec, ...], ...] = (
    (_l(8, 8, 24, (1, 5, 5), 2),),
    (_l(8, 32, 80, (3, 3, 3), 2), _l(32, 32, 80, (3, 3, 3)), _l(32, 32, 80, (3, 3, 3))),
    (_l(32, 56, 184, (5, 3, 3), 2), _l(56, 56, 112, (3, 3, 3)), _l(56, 56, 184, (3, 3, 3))),
    (_l(56, 56, 184, (5, 3, 3)), _l(56, 56, 184, (3, 3, 3)), _l(56, 56, 184, (3, 3, 3)), _l(56, 56, 184, (3, 3, 3))),
    (_l(56, 104, 384, (5, 3, 3), 2), _l(104, 104, 280, (1, 5, 5)), _l(104, 104, 280, (1, 5, 5)),
     _l(104, 104, 344, (1, 5, 5))),
)
A0_HEAD = (480, 2048)


def make_divisible(value: float, divisor: int = 8) -> int:
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


def _swish(x: Tensor) -> Tensor:
    return x * torch.sigmoid(x)


def _cumulative_mean(x: Tensor, total: Tensor, count: Tensor) -> tuple[Tensor, Tensor]:
    """Mean over all frames so far, per frame of ``x`` (N, C, T, 1, 1); the new running total."""
    steps = torch.arange(1, x.shape[2] + 1, dtype=x.dtype, device=x.device).view(1, 1, -1, 1, 1)
    running = torch.cumsum(x, dim=2) + total
    return running / (count + steps), running[:, :, -1:]


class CausalConv(nn.Module):
    """A 3D convolution padded on the past only in time ('same' in space); its state is the last
    k_t - 1 frames of its input."""

    def __init__(self, n_in: int, n_out: int, kernel: tuple[int, int, int], stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.kt = kernel[0]
        self.conv = nn.Conv3d(n_in, n_out, kernel, stride=(1, stride, stride),
                              padding=(0, kernel[1] // 2, kernel[2] // 2), groups=groups, bias=False)

    def forward(self, x: Tensor, buffer: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if buffer is None:
            return self.conv(x), None
        x = torch.cat((buffer, x), dim=2)
        return self.conv(x), x[:, :, x.shape[2] - (self.kt - 1):]


class StreamBlock(nn.Module):
    def __init__(self, spec: LayerSpec, se_multiplier: int = 1) -> None:
        super().__init__()
        self.se_both = se_multiplier == 2
        self.expand: nn.Module | None = None
        if spec.expanded != spec.n_out:
            self.expand = nn.Sequential(nn.Conv3d(spec.n_in, spec.expanded, 1, bias=False),
                                        nn.BatchNorm3d(spec.expanded, eps=1e-3))
        self.deep = CausalConv(spec.expanded, spec.expanded, spec.kernel, spec.stride, groups=spec.expanded)
        self.deep_bn = nn.BatchNorm3d(spec.expanded, eps=1e-3)
        # Squeeze-excitation sees the cumulative (causal) mean and this frame's spatial mean, concatenated
        # (se_multiplier 2, as the stream port does), or the cumulative mean alone (1).
        squeeze = make_divisible(spec.expanded // 4 * se_multiplier)
        self.se_fc1 = nn.Conv3d(se_multiplier * spec.expanded, squeeze, 1)
        self.se_fc2 = nn.Conv3d(squeeze, spec.expanded, 1)
        self.project = nn.Sequential(nn.Conv3d(spec.expanded, spec.n_out, 1, bias=False),
                                     nn.BatchNorm3d(spec.n_out, eps=1e-3))
        self.shortcut: nn.Module | None = None
        if spec.stride != 1 or spec.n_in != spec.n_out:
            pool: list[nn.Module] = [nn.AvgPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))] \
                if spec.stride != 1 else []
            self.shortcut = nn.Sequential(*pool, nn.Conv3d(spec.n_in, spec.n_out, 1, bias=False),
                                          nn.BatchNorm3d(spec.n_out, eps=1e-3))
        self.temporal = spec.kernel[0] > 1

    def forward(self, x: Tensor, buffer: Tensor | None, se_total: Tensor, count: Tensor
                ) -> tuple[Tensor, Tensor | None, Tensor]:
        y = _swish(self.expand(x)) if self.expand is not None else x
        y, buffer = self.deep(y, buffer)
        y = _swish(self.deep_bn(y))
        frame_mean = y.mean(dim=(3, 4), keepdim=True)
        causal_mean, se_total = _cumulative_mean(frame_mean, se_total, count)
        pooled = torch.cat((causal_mean, frame_mean), dim=1) if self.se_both else causal_mean
        gate = torch.sigmoid(self.se_fc2(_swish(self.se_fc1(pooled))))
        y = self.project(y * gate)
        return (x if self.shortcut is None else self.shortcut(x)) + y, buffer, se_total


def _out_size(size: int, kernel: int, stride: int) -> int:
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


class MoViNetStream(nn.Module):
    def __init__(self, blocks: tuple[tuple[LayerSpec, ...], ...] = A0_BLOCKS, stem: int = A0_STEM,
                 head: tuple[int, int] = A0_HEAD, num_classes: int = 600, se_multiplier: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(3, stem, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False),
                                  nn.BatchNorm3d(stem, eps=1e-3))
        self.specs = tuple(spec for block in blocks for spec in block)
        self.layers = nn.ModuleList(StreamBlock(spec, se_multiplier) for spec in self.specs)
        width = self.specs[-1].n_out
        self.conv7 = nn.Sequential(nn.Conv3d(width, head[0], 1, bias=False), nn.BatchNorm3d(head[0], eps=1e-3))
        self.dense9 = nn.Conv3d(head[0], head[1], 1)
        self.dense10 = nn.Conv3d(head[1], num_classes, 1)
        self.head_width = head[0]

    def state_shapes(self, batch: int, height: int, width: int) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of every part of the state, in the order it is packed: the temporal
        convolutions' frame buffers, the squeeze-excitations' running sums, the head's running sum,
        the frame count."""
        h, w = _out_size(height, 3, 2), _out_size(width, 3, 2)
        buffers, sums = [], []
        for i, spec in enumerate(self.specs):
            if spec.kernel[0] > 1:
                buffers.append((f"buffer{i}", (batch, spec.expanded, spec.kernel[0] - 1, h, w)))
            h, w = _out_size(h, spec.kernel[1], spec.stride), _out_size(w, spec.kernel[2], spec.stride)
            sums.append((f"se_sum{i}", (batch, spec.expanded, 1, 1, 1)))
        return [*buffers, *sums, ("head_sum", (batch, self.head_width, 1, 1, 1)), ("frames", (batch, 1, 1, 1, 1))]

    def initial_state(self, batch: int, height: int, width: int) -> Tensor:
        """The packed zero state of a fresh stream: (batch, state values per sample)."""
        per_sample = sum(_numel(shape[1:]) for _, shape in self.state_shapes(1, height, width))
        return torch.zeros((batch, per_sample))

    def unpack(self, state: Tensor, height: int, width: int) -> list[Tensor]:
        shapes = [shape[1:] for _, shape in self.state_shapes(1, height, width)]
        parts = torch.split(state, [_numel(shape) for shape in shapes], dim=1)
        return [part.reshape(state.shape[0], *shape) for part, shape in zip(parts, shapes)]

    def forward(self, frames: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``frames`` (N, 3, T, H, W), ``state`` (N, S) packed (None: a fresh stream's zeros) -> logits
        of the last frame (N, classes) and the new packed state. One packed tensor rather than 28: an
        exporter or runtime sees two inputs and two outputs of fixed shape, whatever the network's layout."""
        height, width = frames.shape[-2:]
        expected = sum(_numel(shape[1:]) for _, shape in self.state_shapes(1, height, width))
        if state is None:  # also lets bench.suites.cost count the model on the meta device from the frame alone
            state = frames.new_zeros((frames.shape[0], expected))
        if state.dim() != 2 or state.shape[1] != expected:
            raise ValueError(f"MoViNetStream takes a packed state of shape (N, {expected}) for {height}x{width} "
                             f"frames, got {tuple(state.shape)} (see initial_state)")
        parts = self.unpack(state, height, width)
        n_buffers = sum(1 for spec in self.specs if spec.kernel[0] > 1)
        buffers, sums = parts[:n_buffers], parts[n_buffers:-2]
        head_total, count = parts[-2], parts[-1]
        x = _swish(self.stem(frames))
        new_buffers, new_sums = [], []
        for layer, spec, total in zip(self.layers, self.specs, sums):
            buffer = buffers[len(new_buffers)] if spec.kernel[0] > 1 else None
            x, buffer, total = layer(x, buffer, total, count)
            if buffer is not None:
                new_buffers.append(buffer)
            new_sums.append(total)
        x = _swish(self.conv7(x))
        pooled, head_total = _cumulative_mean(x.mean(dim=(3, 4), keepdim=True), head_total, count)
        logits = self.dense10(_swish(self.dense9(pooled[:, :, -1:]))).flatten(1)
        new_state = [*new_buffers, *new_sums, head_total, count + frames.shape[2]]
        return logits, torch.cat([part.reshape(part.shape[0], -1) for part in new_state], dim=1)


def _numel(shape: tuple[int, ...]) -> int:
    out = 1
    for size in shape:
        out *= size
    return out


def build_movinet_a0_stream(seed: int = 0, **overrides: object) -> MoViNetStream:
    torch.manual_seed(seed)
    return MoViNetStream(**overrides).eval()  # type: ignore[arg-type]


def a0_stream_inputs(batch_size: int, seed: int, size: int = 172) -> tuple[Tensor, Tensor]:
    """One frame in [0, 1] (N, 3, 1, size, size) and the packed zero state of a fresh stream."""
    generator = torch.Generator().manual_seed(seed)
    frame = torch.rand((batch_size, 3, 1, size, size), generator=generator)  # MoViNet takes [0, 1] frames
    with torch.device("meta"):  # only the state's layout is needed: no weights, no draw from torch's RNG
        layout = MoViNetStream()
    return frame, layout.initial_state(batch_size, size, size)  # built outside the meta context: on the CPU


__all__ += ["a0_stream_inputs"]
