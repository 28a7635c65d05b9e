"""FastFlow, STFPM and Reverse Distillation builders (bench.suites.models.fastflow, .stfpm,
.reverse_distillation).

Real forward passes run at a small input size (32x32: the weights are the real ones, only the
grids shrink); shapes, parameter counts and FLOPs at the default 256x256 are taken on the ``meta``
device, where only shapes are computed. Each ONNX check exports once with a dynamic batch axis (at
batch 3) and runs onnxruntime at batch 1 and 2.
"""

from __future__ import annotations

import copy
import math

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from bench.suites.cost import model_cost  # noqa: E402
from tests.onnx_parity import assert_onnx_matches  # noqa: E402
from bench.suites.models import fastflow, reverse_distillation, stfpm  # noqa: E402
from bench.suites.models.fastflow import FlowStep, build_fastflow  # noqa: E402
from bench.suites.models.blur import gaussian_kernel2d as gaussian_kernel  # noqa: E402
from bench.suites.models.reverse_distillation import build_reverse_distillation  # noqa: E402
from bench.suites.models.stfpm import build_stfpm  # noqa: E402

pytestmark = pytest.mark.slow

SIZE = 32  # small input for real forward passes
DEFAULT = 256
SEED = 0
BUILDERS = {"fastflow": build_fastflow, "stfpm": build_stfpm, "reverse_distillation": build_reverse_distillation}
MODULES = {"fastflow": fastflow, "stfpm": stfpm, "reverse_distillation": reverse_distillation}
NAMES = list(BUILDERS)


def image(batch: int, size: int = SIZE, seed: int = 123) -> torch.Tensor:
    """A stand-in for an ImageNet-normalised image batch."""
    return torch.randn((batch, 3, size, size), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return {name: builder(seed=SEED, input_size=SIZE) for name, builder in BUILDERS.items()}


@pytest.fixture(scope="module")
def outputs(models) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """name -> (input, anomaly_map, score) of one real forward pass at batch 2."""
    result = {}
    with torch.no_grad():
        for name, model in models.items():
            x = image(2)
            anomaly_map, score = model(x)
            result[name] = (x, anomaly_map, score)
    return result


@pytest.fixture(scope="module")
def meta_models() -> dict[str, torch.nn.Module]:
    """The models at the default size, on the meta device (shapes only, nothing computed)."""
    return {name: builder(seed=SEED).to("meta") for name, builder in BUILDERS.items()}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- Shapes, conventions ----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 2])
def test_output_shapes_for_batch_1_and_2(models, outputs, name, batch):
    if batch == 2:
        x, anomaly_map, score = outputs[name]
    else:
        x = image(batch)
        with torch.no_grad():
            anomaly_map, score = models[name](x)
    assert anomaly_map.shape == (batch, 1, SIZE, SIZE)
    assert score.shape == (batch,)
    assert anomaly_map.dtype == score.dtype == torch.float32
    assert torch.isfinite(anomaly_map).all() and torch.isfinite(score).all()
    assert x.equal(image(batch)), "forward must not modify its input"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 2])
def test_default_size_shapes_on_meta(meta_models, name, batch):
    model = meta_models[name]
    anomaly_map, score = model(torch.empty(batch, 3, DEFAULT, DEFAULT, device="meta"))
    assert anomaly_map.shape == (batch, 1, DEFAULT, DEFAULT) and score.shape == (batch,)


@pytest.mark.parametrize("name", NAMES)
def test_builder_returns_eval_mode_and_declares_input_norm(models, name):
    assert not any(module.training for module in models[name].modules())
    assert MODULES[name].INPUT_NORM == {BUILDERS[name].__name__: "imagenet"}
    assert BUILDERS[name].__name__ in MODULES[name].__all__


@pytest.mark.parametrize("name", NAMES)
def test_score_is_the_max_of_the_map_per_sample(outputs, name):
    _, anomaly_map, score = outputs[name]
    for i in range(score.shape[0]):
        assert score[i] == anomaly_map[i].max()
    assert not torch.equal(anomaly_map[0], anomaly_map[1]), "samples must not share a map"


# --- Determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_weights_and_outputs(models, outputs, name):
    again = BUILDERS[name](seed=SEED, input_size=SIZE)
    reference = models[name].state_dict()
    for key, tensor in again.state_dict().items():
        assert torch.equal(tensor, reference[key]), key
    x, anomaly_map, score = outputs[name]
    with torch.no_grad():
        anomaly_map2, score2 = again(x)
    assert torch.equal(anomaly_map, anomaly_map2) and torch.equal(score, score2)


@pytest.mark.parametrize("name", NAMES)
def test_different_seed_different_outputs(outputs, name):
    other = BUILDERS[name](seed=SEED + 1, input_size=SIZE)
    x, anomaly_map, score = outputs[name]
    with torch.no_grad():
        anomaly_map2, score2 = other(x)
    assert not torch.equal(anomaly_map, anomaly_map2)
    assert not torch.equal(score, score2)


# --- FastFlow ---------------------------------------------------------------------------------


def test_fastflow_step_is_the_all_in_one_block():
    """One step, recomputed from its definition: coupling on the last C//2 channels with a
    0.1-scaled subnet and a tanh soft clamp of 2, global affine, then a channel permutation."""
    torch.manual_seed(7)
    step = FlowStep(channels=6, kernel_size=3).eval()
    with torch.no_grad():
        step.global_scale.add_(torch.randn_like(step.global_scale))  # a non-trivial global scale
        step.global_offset.add_(torch.randn_like(step.global_offset))
        x = torch.randn(2, 6, 5, 5)
        x1, x2 = x[:, :3], x[:, 3:]
        a = 0.1 * step.subnet(x1)
        s = 2.0 * torch.tanh(a[:, :3])
        y = torch.cat([x1, x2 * torch.exp(s) + a[:, 3:]], dim=1)
        scale = 0.2 * torch.log1p(torch.exp(0.5 * step.global_scale))  # 0.1 * softplus, beta 0.5
        y = y * scale + step.global_offset
        perm = step.w_perm[:, :, 0, 0].argmax(dim=1)
        torch.testing.assert_close(step(x), y[:, perm])
    # The permutation matrix is a permutation, and the global scale starts at 1.
    w = step.w_perm[:, :, 0, 0]
    assert torch.equal(w.sum(0), torch.ones(6)) and torch.equal(w.sum(1), torch.ones(6))
    fresh = FlowStep(channels=5, kernel_size=1)
    torch.testing.assert_close(0.1 * F.softplus(fresh.global_scale, beta=0.5), torch.ones(1, 5, 1, 1))
    assert fresh.passive == 3 and fresh.active == 2  # odd channels: C - C//2 condition, C//2 move
    assert fresh.subnet[0].in_channels == 3 and fresh.subnet[2].out_channels == 4


def test_fastflow_structure_follows_anomalib_resnet18(models):
    model = models["fastflow"]
    assert len(model.flows) == 3
    for flow, channels, norm in zip(model.flows, (64, 128, 256), model.norms):
        assert len(flow) == 8
        assert [step.subnet[0].kernel_size[0] for step in flow] == [3, 1, 3, 1, 3, 1, 3, 1]
        assert all(step.subnet[0].out_channels == channels // 2 for step in flow)  # hidden_ratio 1
        assert all(step.clamp == 2.0 for step in flow)
        side = SIZE * 16 // channels  # strides 4, 8, 16 for 64, 128, 256 channels
        assert norm.normalized_shape == (channels, side, side)


def test_fastflow_map_is_the_mean_of_upsampled_negative_likelihoods(models, outputs):
    model = models["fastflow"]
    x, anomaly_map, _ = outputs["fastflow"]
    with torch.no_grad():
        features = model.feature_extractor(x)
        maps = []
        for f, norm, flow in zip(features, model.norms, model.flows):
            z = flow(norm(f))
            prob = torch.exp(-0.5 * (z**2).mean(dim=1, keepdim=True))
            maps.append(F.interpolate(-prob, size=(SIZE, SIZE), mode="bilinear", align_corners=False))
        expected = (maps[0] + maps[1] + maps[2]) / 3
    torch.testing.assert_close(anomaly_map, expected)
    assert (anomaly_map < 0).all() and (anomaly_map >= -1).all()


def test_fastflow_rejects_an_input_size_the_layer_norms_cannot_fit():
    with pytest.raises(ValueError, match="input_size"):
        build_fastflow(seed=0, input_size=72)


# --- STFPM ------------------------------------------------------------------------------------


def test_stfpm_map_is_the_product_of_cosine_distances(models, outputs):
    """0.5 * ||t/|t| - s/|s| ||^2 = 1 - cos(t, s); the levels multiply."""
    model = models["stfpm"]
    x, anomaly_map, _ = outputs["stfpm"]
    with torch.no_grad():
        expected = torch.ones(2, 1, SIZE, SIZE)
        for t, s in zip(model.teacher(x), model.student(x)):
            level = (1 - F.cosine_similarity(t, s, dim=1)).unsqueeze(1)
            expected = expected * F.interpolate(level, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    torch.testing.assert_close(anomaly_map, expected, rtol=1e-4, atol=1e-7)
    assert (anomaly_map >= 0).all()


def test_stfpm_teacher_and_student_are_resnet18_to_layer3(models):
    model = models["stfpm"]
    with torch.no_grad():
        shapes = [tuple(f.shape) for f in model.student(image(1))]
    assert shapes == [(1, 64, 8, 8), (1, 128, 4, 4), (1, 256, 2, 2)]
    assert model.teacher.layers == model.student.layers == ("layer1", "layer2", "layer3")


# --- Reverse Distillation ---------------------------------------------------------------------


def test_reverse_distillation_shapes_mirror_the_encoder(models):
    model = models["reverse_distillation"]
    x = image(1)
    with torch.no_grad():
        encoded = model.encoder(x)
        embedding = model.bottleneck(list(encoded))
        decoded = model.decoder(embedding)
    assert [tuple(e.shape) for e in encoded] == [(1, 256, 8, 8), (1, 512, 4, 4), (1, 1024, 2, 2)]
    assert tuple(embedding.shape) == (1, 2048, 1, 1)
    assert [tuple(d.shape) for d in decoded] == [tuple(e.shape) for e in encoded]


def test_reverse_distillation_map_is_blurred_sum_of_cosine_distances(models, outputs):
    model = models["reverse_distillation"]
    x, anomaly_map, _ = outputs["reverse_distillation"]
    with torch.no_grad():
        encoded, decoded = model.features(x)
        total = torch.zeros(2, 1, SIZE, SIZE)
        for e, d in zip(encoded, decoded):
            level = (1 - F.cosine_similarity(e, d, dim=1)).unsqueeze(1)
            total = total + F.interpolate(level, size=(SIZE, SIZE), mode="bilinear", align_corners=True)
        kernel = gaussian_kernel(4.0).view(1, 1, 33, 33)
        expected = F.conv2d(F.pad(total, (16, 16, 16, 16), mode="reflect"), kernel)
    torch.testing.assert_close(anomaly_map, expected)


def test_gaussian_kernel_is_anomalibs_sigma_4_kernel():
    kernel = gaussian_kernel(4.0)
    assert kernel.shape == (33, 33)  # 2 * int(4 * 4 + 0.5) + 1
    torch.testing.assert_close(kernel.sum(), torch.tensor(1.0))
    torch.testing.assert_close(kernel, kernel.T)
    center = kernel[16, 16]
    torch.testing.assert_close(kernel[16, 20] / center, torch.tensor(math.exp(-16 / 32)))
    blur = reverse_distillation.GaussianBlur(4.0)  # the shared bench.suites.models.blur
    flat = torch.full((1, 1, 40, 40), 3.0)
    torch.testing.assert_close(blur(flat), flat)


def test_reverse_distillation_multiply_mode_multiplies(models):
    """The map generator's other mode: the same features, levels multiplied."""
    model = copy.deepcopy(models["reverse_distillation"])
    model.mode = "multiply"
    x = image(1)
    with torch.no_grad():
        anomaly_map, _ = model(x)
        encoded, decoded = model.features(x)
        product = torch.ones(1, 1, SIZE, SIZE)
        for e, d in zip(encoded, decoded):
            level = (1 - F.cosine_similarity(e, d, dim=1)).unsqueeze(1)
            product = product * F.interpolate(level, size=(SIZE, SIZE), mode="bilinear", align_corners=True)
        torch.testing.assert_close(anomaly_map, model.blur(product))


# --- Parameter counts from the published layer shapes -----------------------------------------


def conv(c_in: int, c_out: int, k: int, bias: bool = False) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def bn(c: int) -> int:
    return 2 * c


def basic_block(c_in: int, c_out: int) -> int:
    shortcut = conv(c_in, c_out, 1) + bn(c_out) if c_in != c_out else 0
    return conv(c_in, c_out, 3) + bn(c_out) + conv(c_out, c_out, 3) + bn(c_out) + shortcut


STEM = conv(3, 64, 7) + bn(64)
# ResNet-18, stem and layer1..3: two BasicBlocks per stage, 64 -> 128 -> 256 channels.
RESNET18_TO_LAYER3 = (
    STEM + 2 * basic_block(64, 64) + basic_block(64, 128) + basic_block(128, 128)
    + basic_block(128, 256) + basic_block(256, 256)
)


def bottleneck(c_in: int, planes: int, width: int, shortcut: bool) -> int:
    mid, out = planes * width // 64, 4 * planes
    proj = conv(c_in, out, 1) + bn(out) if shortcut else 0
    return conv(c_in, mid, 1) + bn(mid) + conv(mid, mid, 3) + bn(mid) + conv(mid, out, 1) + bn(out) + proj


def wide_stage(c_in: int, planes: int, depth: int) -> int:
    return bottleneck(c_in, planes, 128, True) + (depth - 1) * bottleneck(4 * planes, planes, 128, False)


# Wide ResNet-50-2, stem and layer1..3 (3, 4, 6 blocks; bottleneck width twice ResNet-50's).
WRN50_2_TO_LAYER3 = STEM + wide_stage(64, 64, 3) + wide_stage(256, 128, 4) + wide_stage(512, 256, 6)


def ocbe(width: int) -> int:
    fusion = conv(256, 512, 3) + bn(512) + conv(512, 1024, 3) + bn(1024) + conv(512, 1024, 3) + bn(1024)
    return fusion + bottleneck(3072, 512, width, True) + 2 * bottleneck(2048, 512, width, False)


def decoder_block(c_in: int, planes: int, up: bool) -> int:
    mid, out = 2 * planes, 4 * planes
    middle = conv(mid, mid, 2) if up else conv(mid, mid, 3)  # 2x2 transposed conv or 3x3 conv
    shortcut = conv(c_in, out, 2) + bn(out) if up else 0
    return conv(c_in, mid, 1) + bn(mid) + middle + bn(mid) + conv(mid, out, 1) + bn(out) + shortcut


DECODER = sum(
    decoder_block(c_in, planes, True) + (depth - 1) * decoder_block(4 * planes, planes, False)
    for c_in, planes, depth in ((2048, 256, 3), (1024, 128, 4), (512, 64, 6))
)


def flow_step(c: int, k: int) -> int:
    c1, c2 = c - c // 2, c // 2
    return conv(c1, c1, k, bias=True) + conv(c1, 2 * c2, k, bias=True) + 2 * c  # subnet, global affine


def fastflow_params(size: int) -> int:
    norms = sum(2 * c * (size // s) ** 2 for c, s in ((64, 4), (128, 8), (256, 16)))
    flows = sum(4 * (flow_step(c, 3) + flow_step(c, 1)) for c in (64, 128, 256))
    return RESNET18_TO_LAYER3 + norms + flows


def test_backbone_parameter_counts_match_the_published_shapes(models):
    assert RESNET18_TO_LAYER3 == 2_782_784
    assert n_params(models["stfpm"].teacher) == RESNET18_TO_LAYER3
    assert n_params(models["reverse_distillation"].encoder) == WRN50_2_TO_LAYER3


def test_model_parameter_counts_match_the_published_shapes(models):
    assert n_params(models["fastflow"]) == fastflow_params(SIZE)
    assert n_params(models["stfpm"]) == 2 * RESNET18_TO_LAYER3
    rd = models["reverse_distillation"]
    assert n_params(rd.bottleneck) == ocbe(128)
    assert n_params(rd.decoder) == DECODER
    assert n_params(rd) == WRN50_2_TO_LAYER3 + ocbe(128) + DECODER


def test_anomalib_ocbe_width_option():
    with torch.device("meta"):
        narrow = build_reverse_distillation(seed=0, ocbe_width=64)
    assert n_params(narrow.bottleneck) == ocbe(64)


# --- Cost at the default size -----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_default_cost_params_and_flops_scale_with_batch(meta_models, name):
    model = meta_models[name]
    one = model_cost(model, (torch.empty(1, 3, DEFAULT, DEFAULT, device="meta"),))
    two = model_cost(model, (torch.empty(2, 3, DEFAULT, DEFAULT, device="meta"),))
    assert one["params"] == two["params"] == n_params(model)
    assert one["flops"] > 0 and two["flops"] == 2 * one["flops"]
    if name == "fastflow":
        assert one["params"] == fastflow_params(DEFAULT)


# --- ONNX -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_onnx_export_with_dynamic_batch_matches_pytorch(models, name, tmp_path):
    assert_onnx_matches(models[name], lambda n: image(n, seed=n), tmp_path / f"{name}.onnx", export_batch=3,
                        batches=(1, 2))
