"""EfficientAD-S and -M builders (bench.suites.models.efficientad) and bench.suites.cost.model_cost.

Real forward passes are few (EfficientAD-M is ~235 GFLOPs per image, about 1.5 s on two CPU
cores): each builder runs once per seed that needs values, its outputs are shared by the tests,
and shapes and FLOPs at other batch sizes are taken on the ``meta`` device, where only shapes are
computed.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from bench.suites.cost import model_cost  # noqa: E402
from bench.suites.models import efficientad  # noqa: E402
from bench.suites.models.efficientad import EfficientAD, build_efficientad_m, build_efficientad_s  # noqa: E402
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

BUILDERS = {"s": build_efficientad_s, "m": build_efficientad_m}
SIZE = 256
SEED = 0
# Batch used for the real forward pass of each size (M only at 1, to keep the tests fast).
REAL_BATCH = {"s": 2, "m": 1}


def image(batch: int) -> torch.Tensor:
    return torch.rand((batch, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(123))


def on_meta(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(model).to("meta")


def meta_image(batch: int) -> torch.Tensor:
    return torch.empty((batch, 3, SIZE, SIZE), device="meta")


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return {size: builder(seed=SEED) for size, builder in BUILDERS.items()}


@pytest.fixture(scope="module")
def outputs(models) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """size -> (input, anomaly_map, score) of one real forward pass."""
    result = {}
    with torch.no_grad():
        for size, model in models.items():
            x = image(REAL_BATCH[size])
            anomaly_map, score = model(x)
            result[size] = (x, anomaly_map, score)
    return result


# --- Shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["s", "m"])
def test_real_forward_shapes_and_values(outputs, size):
    x, anomaly_map, score = outputs[size]
    batch = x.shape[0]
    assert anomaly_map.shape == (batch, 1, SIZE, SIZE)
    assert score.shape == (batch,)
    assert anomaly_map.dtype == score.dtype == torch.float32
    assert torch.isfinite(anomaly_map).all() and torch.isfinite(score).all()
    assert x.equal(image(batch)), "forward must not modify its input"


@pytest.mark.parametrize("size", ["s", "m"])
@pytest.mark.parametrize("batch", [1, 2])
def test_output_shapes_for_batch_1_and_2(models, size, batch):
    anomaly_map, score = on_meta(models[size])(meta_image(batch))
    assert anomaly_map.shape == (batch, 1, SIZE, SIZE)
    assert score.shape == (batch,)


@pytest.mark.parametrize("size", ["s", "m"])
def test_intermediate_shapes_follow_the_reference(models, size):
    """PDNs without padding give a 56x56 grid; the autoencoder decodes to the same grid."""
    model = on_meta(models[size])
    x = meta_image(2)
    assert model.teacher(x).shape == (2, 384, 56, 56)
    assert model.student(x).shape == (2, 768, 56, 56)
    assert model.ae(x).shape == (2, 384, 56, 56)
    assert model.ae.encoder[-1](torch.empty(2, 64, 16, 16, device="meta")).shape == (2, 64, 8, 8)
    assert efficientad.decoder_sizes(256) == (3, 8, 15, 32, 63, 127, 56)


def test_padded_variant_matches_the_paper_table():
    """padding=True (the paper's layer table): 64x64 grid, no padding of the map."""
    with torch.device("meta"):
        model = EfficientAD("s", padding=True).eval()
        x = meta_image(1)
        assert model.teacher(x).shape == (1, 384, 64, 64)
        assert model.ae(x).shape == (1, 384, 64, 64)
        anomaly_map, score = model(x)
    assert anomaly_map.shape == (1, 1, SIZE, SIZE) and score.shape == (1,)


# --- Inference path ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["s", "m"])
def test_score_is_the_max_of_the_map_per_sample(outputs, size):
    _, anomaly_map, score = outputs[size]
    for i in range(score.shape[0]):
        assert score[i] == anomaly_map[i].max()


@pytest.mark.parametrize("size", ["s", "m"])
def test_builder_returns_eval_mode_with_calibrated_buffers(models, size):
    model = models[size]
    assert not any(module.training for module in model.modules())
    assert model.q_st_end > model.q_st_start and model.q_ae_end > model.q_ae_start
    assert (model.teacher_std > 0).all()
    assert not model.teacher_mean.eq(0).all(), "calibrate() should have set the teacher mean"


def test_map_is_the_reference_combination_padded_and_upsampled(models, outputs):
    """Recompute the S map from the three networks, step by step as the reference does."""
    model = models["s"]
    x, anomaly_map, _ = outputs["s"]
    x, anomaly_map = x[:1], anomaly_map[:1]
    with torch.no_grad():
        xn = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
            [0.229, 0.224, 0.225]
        ).view(1, 3, 1, 1)
        t = (model.teacher(xn) - model.teacher_mean) / model.teacher_std
        s = model.student(xn)
        a = model.ae(xn)
        map_st = ((t - s[:, :384]) ** 2).mean(1, keepdim=True)
        map_ae = ((a - s[:, 384:]) ** 2).mean(1, keepdim=True)
        map_st = 0.1 * (map_st - model.q_st_start) / (model.q_st_end - model.q_st_start)
        map_ae = 0.1 * (map_ae - model.q_ae_start) / (model.q_ae_end - model.q_ae_start)
        expected = torch.nn.functional.pad(0.5 * map_st + 0.5 * map_ae, (4, 4, 4, 4))
        expected = torch.nn.functional.interpolate(expected, size=(SIZE, SIZE), mode="bilinear")
    torch.testing.assert_close(anomaly_map, expected)


# --- Determinism ------------------------------------------------------------------------------


def test_same_seed_same_outputs_s(models, outputs):
    x, anomaly_map, score = outputs["s"]
    again = build_efficientad_s(seed=SEED)
    reference = models["s"].state_dict()
    for name, tensor in again.state_dict().items():
        assert torch.equal(tensor, reference[name]), name
    with torch.no_grad():
        anomaly_map2, score2 = again(x)
    assert torch.equal(anomaly_map, anomaly_map2)
    assert torch.equal(score, score2)


def skip_calibration(monkeypatch) -> None:
    """The calibration pass (one forward) only sets buffers; skip it where only weights matter."""
    monkeypatch.setattr(EfficientAD, "calibrate", lambda self, images: None)


def test_same_seed_same_weights_m(models, monkeypatch):
    """M: same parameters under the same seed (outputs and calibration are checked on S, whose
    forward and calibration are the same code; a second M forward would cost ~1.5 s)."""
    skip_calibration(monkeypatch)
    again = dict(build_efficientad_m(seed=SEED).named_parameters())
    reference = dict(models["m"].named_parameters())
    assert again.keys() == reference.keys()
    for name, param in reference.items():
        assert torch.equal(param, again[name]), name


@pytest.mark.parametrize("size", ["s", "m"])
def test_different_seed_different_weights(models, size, monkeypatch):
    skip_calibration(monkeypatch)
    other = dict(BUILDERS[size](seed=SEED + 1).named_parameters())
    for name, param in models[size].named_parameters():
        assert not torch.equal(param, other[name]), name


# --- Parameter counts -------------------------------------------------------------------------


def conv(c_in: int, c_out: int, k: int) -> int:
    """Parameters of a k x k convolution with bias."""
    return c_in * c_out * k * k + c_out


def pdn_s(out: int) -> int:
    # PDN-S (paper table): 4x4 -> 128, 4x4 -> 256, 3x3 -> 256, 4x4 -> out.
    return conv(3, 128, 4) + conv(128, 256, 4) + conv(256, 256, 3) + conv(256, out, 4)


def pdn_m(out: int) -> int:
    # PDN-M (paper table): 4x4 -> 256, 4x4 -> 512, 1x1 -> 512, 3x3 -> 512, 4x4 -> out, 1x1 -> out.
    return (
        conv(3, 256, 4)
        + conv(256, 512, 4)
        + conv(512, 512, 1)
        + conv(512, 512, 3)
        + conv(512, out, 4)
        + conv(out, out, 1)
    )


# Autoencoder: five 4x4 stride-2 convolutions (3->32->32->64->64->64), an 8x8 bottleneck
# convolution, six 4x4 decoder convolutions 64->64, a 3x3 64->64 and a 3x3 64->384.
AE_PARAMS = (
    conv(3, 32, 4)
    + conv(32, 32, 4)
    + conv(32, 64, 4)
    + 2 * conv(64, 64, 4)
    + conv(64, 64, 8)
    + 6 * conv(64, 64, 4)
    + conv(64, 64, 3)
    + conv(64, 384, 3)
)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_teacher_parameter_counts_match_the_published_shapes(models):
    assert pdn_s(384) == 2_694_144
    assert pdn_m(384) == 8_026_624
    assert n_params(models["s"].teacher) == pdn_s(384)
    assert n_params(models["m"].teacher) == pdn_m(384)


def test_student_autoencoder_and_total_parameter_counts(models):
    assert n_params(models["s"].student) == pdn_s(768)
    assert n_params(models["m"].student) == pdn_m(768)
    assert n_params(models["s"].ae) == n_params(models["m"].ae) == AE_PARAMS
    assert n_params(models["s"]) == pdn_s(384) + pdn_s(768) + AE_PARAMS
    assert n_params(models["m"]) == pdn_m(384) + pdn_m(768) + AE_PARAMS
    assert n_params(models["m"]) > n_params(models["s"])


# --- model_cost -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def costs(models) -> dict[tuple[str, int], dict[str, int]]:
    return {
        (size, batch): model_cost(on_meta(model), (meta_image(batch),))
        for size, model in models.items()
        for batch in (1, 2)
    }


@pytest.mark.parametrize("size", ["s", "m"])
def test_model_cost_params_and_flops_scale_with_batch(models, costs, size):
    one, two = costs[(size, 1)], costs[(size, 2)]
    assert isinstance(one["params"], int) and isinstance(one["flops"], int)
    assert one["params"] == two["params"] == n_params(models[size])
    assert one["flops"] > 0
    assert two["flops"] == 2 * one["flops"]


def test_model_cost_s_is_cheaper_than_m(costs):
    assert costs[("s", 1)]["flops"] < costs[("m", 1)]["flops"]
    assert costs[("s", 1)]["params"] < costs[("m", 1)]["params"]


def test_model_cost_on_cpu_equals_the_count_on_meta(models, costs):
    assert model_cost(models["s"], (image(1),)) == costs[("s", 1)]


def test_cost_module_imports_without_torch():
    code = "import sys; sys.modules['torch'] = None; import bench.suites.cost; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("variant", ["s", "m"])
def test_onnx_export_with_dynamic_batch_matches_pytorch(variant, tmp_path):
    from tests.onnx_parity import assert_onnx_matches

    model = {"s": build_efficientad_s, "m": build_efficientad_m}[variant](seed=0)
    gen = torch.Generator().manual_seed(5)
    images = torch.rand((3, 3, 256, 256), generator=gen)
    assert_onnx_matches(model, lambda n: images[:n].clone(), tmp_path / f"efficientad_{variant}.onnx")
