"""The video suite's models: published parameter counts and FLOPs (counted on the meta device, full
size), forward shapes, MoViNet's stream mode against its clip mode, ST-GCN's graph, the skeleton
stream's window, and (slow) ONNX export with a dynamic batch axis and ONNX Runtime parity for every
architecture, on scaled-down configurations of the same code."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from bench.backends.base import PARITY_TOLERANCE
from bench.suites.cost import model_cost
from bench.suites.models.video import movinet, pose, r2plus1d, stgcn, videomae, x3d

G = 1e9


def _meta_cost(build: Callable[[], torch.nn.Module], *shapes: tuple[int, ...]) -> dict[str, int]:
    with torch.device("meta"):
        model = build()
        return model_cost(model, tuple(torch.empty(s) for s in shapes))


@pytest.mark.parametrize("build, shapes, params, gmacs, rel", [
    # X3D paper Table 4: 0.60 / 1.96 / 4.73 GFLOPs (multiply-accumulates); PyTorchVideo lists 3.79 M params.
    (x3d.build_x3d, [(1, 3, 4, 160, 160)], 3_794_322, 0.60, 0.01),
    pytest.param(x3d.build_x3d, [(1, 3, 13, 160, 160)], 3_794_322, 1.96, 0.01, marks=pytest.mark.slow),
    pytest.param(x3d.build_x3d, [(1, 3, 16, 224, 224)], 3_794_322, 4.73, 0.01, marks=pytest.mark.slow),
    # torchvision r2plus1d_18: 31,505,325 parameters, 40.52 GFLOPS (MACs) at 16x112x112.
    (r2plus1d.build_r2plus1d_18, [(1, 3, 16, 112, 112)], 31_505_325, 40.52, 0.01),
    # VideoMAE ViT-S: 22 M parameters, 57 GFLOPs (MACs) per 16x224x224 view.
    (videomae.build_videomae_s, [(1, 3, 16, 224, 224)], 22_033_936, 57.0, 0.01),
    # ST-GCN: 3.1 M parameters (the reference implementation's figure); ~16.3 G MACs on NTU.
    (stgcn.build_stgcn_ntu, [(1, 3, 300, 25, 2)], 3_098_832, 16.3, 0.06),
    (pose.build_pose_resnet18, [(1, 3, 256, 192)], 15_378_777, None, None),
])
def test_parameter_counts_and_flops_on_meta(build, shapes, params, gmacs, rel):
    cost = _meta_cost(build, *shapes)
    assert cost["params"] == params
    if gmacs is not None:
        assert cost["flops"] / 2 / G == pytest.approx(gmacs, rel=rel)


def test_movinet_a0_counts_match_the_paper():
    # MoViNet paper Table: A0 3.1 M parameters, 2.7 GFLOPs on 50 frames of 172x172.
    model = movinet.MoViNetStream()
    with torch.device("meta"):
        meta = movinet.build_movinet_a0_stream()
        state = meta.initial_state(1, 172, 172)
        clip_cost = model_cost(meta, (torch.empty(1, 3, 50, 172, 172), state))
        frame_cost = model_cost(meta, (torch.empty(1, 3, 1, 172, 172), state))
    assert clip_cost["params"] == 3_111_784 == sum(p.numel() for p in model.parameters())
    assert clip_cost["flops"] / 2 / G == pytest.approx(2.7, rel=0.025)  # 2.65 G here
    # 50 calls of one frame cost the clip's arithmetic plus the head (480 -> 2048 -> 600) 49 more times:
    # streaming recomputes nothing else.
    head = 2 * (480 * 2048 + 2048 * 600)
    assert frame_cost["flops"] * 50 == clip_cost["flops"] + 49 * head
    wide = movinet.MoViNetStream(se_multiplier=2)
    assert sum(p.numel() for p in wide.parameters()) == 3_783_968  # the PyTorch port's stream variant
    # 11 temporal buffers, 15 SE sums, the head's sum, the frame count: one packed (N, S) state.
    parts = model.state_shapes(1, 172, 172)
    assert len(parts) == 11 + 15 + 2 and state.shape == (1, 1_290_321) == (1, sum(np.prod(s) for _, s in parts))


SMALL_MOVINET = ((movinet.LayerSpec(8, 8, 16, (1, 3, 3), 2),),
                 (movinet.LayerSpec(8, 16, 24, (3, 3, 3), 2), movinet.LayerSpec(16, 16, 24, (5, 3, 3))))


def _small_movinet(se: int = 1) -> movinet.MoViNetStream:
    torch.manual_seed(0)
    return movinet.MoViNetStream(SMALL_MOVINET, stem=8, head=(32, 48), num_classes=7, se_multiplier=se).eval()


@pytest.mark.parametrize("se", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_movinet_stream_frame_by_frame_equals_the_causal_clip(se):
    model = _small_movinet(se)
    clip = torch.rand(2, 3, 6, 16, 16, generator=torch.Generator().manual_seed(1))
    state = model.initial_state(2, 16, 16)
    with torch.no_grad():
        whole, whole_state = model(clip, state)
        carried = state
        for t in range(clip.shape[2]):
            logits, carried = model(clip[:, :, t:t + 1], carried)
        # Without the state the frame alone gives another answer: the state is what carries the past.
        alone, _ = model(clip[:, :, -1:], state)
    torch.testing.assert_close(logits, whole, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(carried, whole_state, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(alone, whole, rtol=1e-3, atol=1e-5)
    parts = model.unpack(carried, 16, 16)
    assert parts[-1].flatten().tolist() == [6.0, 6.0]  # the frame count
    assert [tuple(p.shape) for p in parts] == [shape for _, shape in model.state_shapes(2, 16, 16)]


def test_movinet_refuses_a_wrong_state():
    with pytest.raises(ValueError, match="packed state of shape"):
        _small_movinet()(torch.rand(1, 3, 1, 40, 40), torch.zeros(1, 5))


def test_ntu_graph_partitions():
    a = stgcn.ntu_adjacency()
    assert a.shape == (3, 25, 25)
    # Together the three partitions are the column-normalised adjacency with self-loops.
    np.testing.assert_allclose(a.sum(axis=0).sum(axis=0), np.ones(25), rtol=1e-6)
    assert np.all(np.diag(a[0]) > 0) and np.all(np.diag(a[1]) == 0) and np.all(np.diag(a[2]) == 0)
    assert len(stgcn.NTU_BONES) == 24
    # A[k, source, target]. Joint 1 (spine base) is one hop farther from the centre (21) than joint 2
    # (mid spine): the message 1 -> 2 comes from farther out (partition 1, the reference's a_close),
    # 2 -> 1 from nearer the centre (partition 2); neither is in the other partition.
    assert a[1, 0, 1] > 0 and a[2, 1, 0] > 0 and a[2, 0, 1] == 0 and a[1, 1, 0] == 0


def test_soft_argmax_finds_the_peak():
    heatmaps = torch.full((1, 2, 8, 6), -30.0)
    heatmaps[0, 0, 2, 5] = 30.0
    heatmaps[0, 1, 7, 0] = 30.0
    joints = pose.soft_argmax(heatmaps)
    torch.testing.assert_close(joints[0, :, :2], torch.tensor([[1.0, 2 / 7], [0.0, 1.0]]), atol=1e-4, rtol=0)
    assert joints[0, :, 2].min() > 0.99


def _small_skeleton_stream() -> pose.SkeletonStream:
    torch.manual_seed(0)
    return pose.SkeletonStream(pose.PoseResNet(joints=7, deconv=8, depths=(1, 1, 1, 1)),
                               stgcn.STGCN(num_classes=5, joints=7, width=0.125, depth=5)).eval()


@pytest.mark.slow
def test_skeleton_stream_appends_the_frame_and_drops_the_oldest():
    model = _small_skeleton_stream()
    crops = torch.rand(1, 2, 3, 64, 48)
    window = torch.randn(1, 3, 11, 7, 2)
    with torch.no_grad():
        logits, new_window = model(crops, window)
        _, joints = model.pose(crops[0])
    assert logits.shape == (1, 5) and new_window.shape == window.shape
    torch.testing.assert_close(new_window[:, :, :-1], window[:, :, 1:])
    torch.testing.assert_close(new_window[0, :, -1], joints.permute(2, 1, 0))  # (3, V, M) from (M, V, 3)


# ---------------------------------------------------------------- ONNX export and ONNX Runtime parity


def assert_onnx_parity(model: torch.nn.Module, make: Callable[[int], tuple[torch.Tensor, ...]], path: Path) -> None:
    """Exported at batch 2 with every input's batch axis dynamic, run at batch 1 and 3: every output
    within the harness's fp32 tolerance (max |onnx - torch| / max |torch| <= 1e-4)."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from bench.backends.onnx_export import export_onnx

    export_onnx(model, make(2), path)
    graph = onnx.load(str(path), load_external_data=False).graph
    assert all(i.type.tensor_type.shape.dim[0].dim_param for i in graph.input), "batch axes must be symbolic"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    for n in (1, 3):
        inputs = make(n)
        with torch.no_grad():
            expected = model(*inputs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(None, {name: t.numpy() for name, t in zip(names, inputs)})
        assert len(got) == len(expected)
        for index, (ref, out) in enumerate(zip(expected, got)):
            assert out.shape == tuple(ref.shape), (index, n)
            error = float(np.abs(out.astype(np.float64) - ref.double().numpy()).max())
            scale = float(ref.double().abs().max())
            assert error <= PARITY_TOLERANCE["fp32"] * max(scale, 1e-12), f"output {index} at batch {n}: {error:.3g}"


def _seeded(*shapes: tuple[int, ...]) -> Callable[[int], tuple[torch.Tensor, ...]]:
    return lambda n: tuple(torch.randn((n, *s), generator=torch.Generator().manual_seed(7 + i))
                           for i, s in enumerate(shapes))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["x3d", "r2plus1d", "videomae", "movinet_stream", "skeleton_stream"])
def test_onnx_export_matches_pytorch(name, tmp_path):
    """Every architecture once; the skeleton stream holds both the pose network and ST-GCN (each
    exported alone adds a minute of CI for no path the stream does not take)."""
    torch.manual_seed(0)
    if name == "x3d":
        model, make = x3d.X3D(num_classes=5, depth_factor=0.4, widths=(8, 8, 16, 16), head_width=32), \
            _seeded((3, 4, 32, 32))
    elif name == "r2plus1d":
        model, make = r2plus1d.R2Plus1D(num_classes=5, widths=(8, 8, 16, 16), depths=(1, 1, 1, 1), stem_mid=6), \
            _seeded((3, 4, 32, 32))
    elif name == "videomae":
        model, make = videomae.VideoViT(frames=4, size=32, dim=32, depth=2, heads=2, num_classes=5), \
            _seeded((3, 4, 32, 32))
    elif name == "movinet_stream":
        model = _small_movinet()
        rand = _seeded((3, 1, 40, 40), (model.initial_state(1, 40, 40).shape[1],))
        make = lambda n: (rand(n)[0], rand(n)[1].abs() + 1)  # noqa: E731 - a running count is positive
    else:
        model, make = _small_skeleton_stream(), _seeded((2, 3, 64, 48), (3, 11, 7, 2))
    assert_onnx_parity(model.eval(), make, tmp_path / f"{name}.onnx")


@pytest.mark.slow
def test_every_catalog_workload_is_counted_on_meta():
    """`bench list` and each record count every video workload on the meta device, the stream model
    included (its state defaults to a fresh stream's zeros, so the frame alone is enough)."""
    from bench.suites.cost import workload_cost
    from bench.suites.video import SUITE

    expected = {"x3d_xs": 3_794_322, "movinet_a0_stream": 3_111_784, "st_gcn": 3_098_832,
                "pose_resnet18": 15_378_777}
    for name, params in expected.items():
        cost = workload_cost(SUITE.get(name))
        assert cost["counted_on"] == "meta" and cost["params"] == params, name
