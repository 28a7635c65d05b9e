"""DRAEM (bench.suites.models.draem) and the plain convolutional autoencoder (bench.suites.models.autoencoder).

Real forward passes run at 64x64 (DRAEM at its real widths costs ~25 GFLOPs per image there,
against ~396 GFLOPs at 256); the default 256x256 models are checked on the ``meta`` device, where
only shapes are computed: layer shapes, parameter counts and FLOPs, each against figures derived
here from the published layer tables.
"""

from __future__ import annotations


import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from bench.suites.cost import model_cost  # noqa: E402
from tests.onnx_parity import assert_onnx_matches  # noqa: E402
from bench.suites.models import autoencoder, draem  # noqa: E402
from bench.suites.models.autoencoder import ConvAutoencoder, build_conv_autoencoder  # noqa: E402
from bench.suites.models.blur import gaussian_kernel2d  # noqa: E402
from bench.suites.models.draem import DRAEM, build_draem  # noqa: E402

pytestmark = pytest.mark.slow

SIZE = 64
SEED = 0
BUILDERS = {"draem": build_draem, "autoencoder": build_conv_autoencoder}


def image(batch: int, size: int = SIZE, seed: int = 123) -> torch.Tensor:
    """An RGB image in [0, 1], the input both models take."""
    return torch.rand((batch, 3, size, size), generator=torch.Generator().manual_seed(seed))


# Tests of code paths that do not depend on the widths (determinism, the map and score
# arithmetic) use narrow DRAEMs: each full-width build initialises 97M parameters.
NARROW = {"draem": {"recon_base_width": 8, "disc_base_width": 4}, "autoencoder": {}}


def narrow(name: str, seed: int, **options) -> torch.nn.Module:
    return BUILDERS[name](seed=seed, input_size=SIZE, **NARROW[name], **options)


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return {name: builder(seed=SEED, input_size=SIZE) for name, builder in BUILDERS.items()}


@pytest.fixture(scope="module")
def outputs(models) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """name -> (input, anomaly_map, score) of one forward pass at batch 2."""
    result = {}
    with torch.no_grad():
        for name, model in models.items():
            x = image(2)
            anomaly_map, score = model(x)
            result[name] = (x, anomaly_map, score)
    return result


def default_on_meta(name: str) -> torch.nn.Module:
    with torch.device("meta"):
        model = DRAEM() if name == "draem" else ConvAutoencoder()
    return model.eval()


# --- Layer tables -----------------------------------------------------------------------------
# (c_in, c_out, kernel, output side for convolutions / input side for transposed ones, bias,
# batch norm) for every convolution, written out from the references' layer lists.


def draem_convs(size: int = 256, rb: int = 128, db: int = 64) -> list[tuple[int, int, int, int, bool, bool]]:
    s = size
    convs = []

    def block(c_in: int, c_out: int, side: int, pairs: int = 2, mid: int | None = None) -> None:
        mid = c_out if mid is None else mid
        convs.append((c_in, mid, 3, side, True, True))
        if pairs == 2:
            convs.append((mid, c_out, 3, side, True, True))

    # Reconstructive encoder: widths b*(1, 2, 4, 8, 8), side halved between stages.
    widths = (rb, 2 * rb, 4 * rb, 8 * rb, 8 * rb)
    for k, (c_in, c_out) in enumerate(zip((3, *widths[:-1]), widths)):
        block(c_in, c_out, s >> k)
    # Reconstructive decoder: (upsample + conv w->w, conv w->w, conv w->out) per stage.
    for k, (w, out) in enumerate(((8 * rb, 4 * rb), (4 * rb, 2 * rb), (2 * rb, rb), (rb, rb))):
        side = s >> (3 - k)
        block(w, w, side, pairs=1)
        block(w, out, side, mid=w)
    convs.append((rb, 3, 3, s, True, False))
    # Discriminative encoder: widths b*(1, 2, 4, 8, 8, 8) on the 6-channel input.
    widths = (db, 2 * db, 4 * db, 8 * db, 8 * db, 8 * db)
    for k, (c_in, c_out) in enumerate(zip((6, *widths[:-1]), widths)):
        block(c_in, c_out, s >> k)
    # Discriminative decoder: upsample + conv to w, concat the skip, double conv.
    stages = (
        (8 * db, 8 * db, 8 * db),
        (8 * db, 4 * db, 8 * db),
        (4 * db, 2 * db, 4 * db),
        (2 * db, db, 2 * db),
        (db, db, db),
    )  # (input width, upsampling conv width, skip width)
    for k, (c_in, w, skip) in enumerate(stages):
        side = s >> (4 - k)
        block(c_in, w, side, pairs=1)
        block(w + skip, w, side)
    convs.append((db, 2, 3, s, True, False))
    return convs


def autoencoder_convs(size: int = 256, latent: int = 64) -> tuple[list, list]:
    """(convolutions, transposed convolutions) of the baseline; the blur is not a parameter."""
    s = size
    convs = [
        (3, 32, 4, s // 2, False, True),
        (32, 64, 4, s // 4, False, True),
        (64, 128, 4, s // 8, False, True),
        (128, 256, 4, s // 16, False, True),
        (256, latent, 1, s // 16, True, False),
        (latent, 256, 1, s // 16, False, True),
    ]
    transposed = [
        (256, 128, 4, s // 16, False, True),
        (128, 64, 4, s // 8, False, True),
        (64, 32, 4, s // 4, False, True),
        (32, 3, 4, s // 2, True, False),
    ]
    return convs, transposed


def params_of(convs) -> int:
    return sum(a * b * k * k + (b if bias else 0) + (2 * b if bn else 0) for a, b, k, _, bias, bn in convs)


def flops_of(convs) -> int:
    # Two FLOPs per multiply-accumulate, per output pixel (per input pixel for transposed convs).
    return sum(2 * a * b * k * k * side * side for a, b, k, side, _, _ in convs)


def test_draem_parameter_count_matches_the_layer_table():
    convs = draem_convs()
    assert params_of(convs) == 97_422_725  # the 97.4M usually quoted for DRAEM
    model = default_on_meta("draem")
    assert sum(p.numel() for p in model.parameters()) == params_of(convs)
    assert sum(p.numel() for p in model.reconstructive.parameters()) == params_of(convs[:23])
    assert len([m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]) == len(convs) == 51


def test_autoencoder_parameter_count_matches_the_layer_table():
    convs, transposed = autoencoder_convs()
    model = default_on_meta("autoencoder")
    assert sum(p.numel() for p in model.parameters()) == params_of(convs + transposed) == 1_414_083


def test_draem_flops_at_the_default_size():
    cost = model_cost(default_on_meta("draem"), (torch.empty(1, 3, 256, 256, device="meta"),))
    assert cost["flops"] == flops_of(draem_convs())


def test_autoencoder_flops_at_the_default_size():
    convs, transposed = autoencoder_convs()
    blur = 2 * 33 * 33 * 256 * 256  # the 33x33 Gaussian, one channel
    cost = model_cost(default_on_meta("autoencoder"), (torch.empty(1, 3, 256, 256, device="meta"),))
    assert cost["flops"] == flops_of(convs + transposed) + blur


# --- Shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("batch", [1, 2])
def test_output_shapes_for_batch_1_and_2(models, outputs, name, batch):
    if batch == 2:
        x, anomaly_map, score = outputs[name]
    else:
        x = image(1)
        with torch.no_grad():
            anomaly_map, score = models[name](x)
        # Eval mode: a sample's result does not depend on the rest of the batch.
        torch.testing.assert_close(anomaly_map, outputs[name][1][:1], rtol=1e-4, atol=1e-6)
    assert anomaly_map.shape == (batch, 1, SIZE, SIZE)
    assert score.shape == (batch,)
    assert anomaly_map.dtype == score.dtype == torch.float32
    assert torch.isfinite(anomaly_map).all() and torch.isfinite(score).all()
    assert x.equal(image(batch)), "forward must not modify its input"


@pytest.mark.parametrize("name", list(BUILDERS))
def test_default_size_shapes_on_meta(name):
    model = default_on_meta(name)
    anomaly_map, score = model(torch.empty(2, 3, 256, 256, device="meta"))
    assert anomaly_map.shape == (2, 1, 256, 256) and score.shape == (2,)


def test_draem_sub_network_shapes():
    model = default_on_meta("draem")
    x = torch.empty(2, 3, 256, 256, device="meta")
    assert model.reconstructive(x).shape == (2, 3, 256, 256)
    assert model.logits(x).shape == (2, 2, 256, 256)
    assert model.discriminative.encoder[0][0].in_channels == 6
    # Bottleneck of the reconstructive network: 1024 channels at 1/16 of the input.
    feature = x
    for i, stage in enumerate(model.reconstructive.encoder):
        feature = stage(feature if i == 0 else F.max_pool2d(feature, 2))
    assert feature.shape == (2, 1024, 16, 16)


def test_autoencoder_latent_and_reconstruction(models, outputs):
    model = models["autoencoder"]
    x = outputs["autoencoder"][0]
    with torch.no_grad():
        latent = model.bottleneck(model.encoder(x))
        reconstruction = model.reconstruct(x)
    assert latent.shape == (2, 64, SIZE // 16, SIZE // 16)
    assert reconstruction.shape == x.shape
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1


@pytest.mark.parametrize("size", [48, 100])
def test_draem_rejects_sizes_the_u_net_cannot_take(size):
    with pytest.raises(ValueError):
        DRAEM(size)


def test_autoencoder_rejects_sizes_it_cannot_take():
    with pytest.raises(ValueError):
        ConvAutoencoder(40)
    with pytest.raises(ValueError):
        ConvAutoencoder(32, blur_sigma=8.0)  # reflect padding of 32 pixels on a 32-pixel map


# --- Inference path ---------------------------------------------------------------------------


def test_draem_map_is_the_softmax_probability_of_the_anomalous_class():
    model = narrow("draem", SEED)
    x = image(2)
    with torch.no_grad():
        anomaly_map, score = model(x)
        reconstruction = model.reconstructive(x)
        logits = model.discriminative(torch.cat((x, reconstruction), dim=1))
    expected = (logits[:, 1] - logits.logsumexp(dim=1)).exp().unsqueeze(1)
    torch.testing.assert_close(anomaly_map, expected)
    torch.testing.assert_close(score, expected.amax(dim=(1, 2, 3)))


@pytest.mark.parametrize("name", list(BUILDERS))
def test_score_is_the_max_of_the_map_per_sample(outputs, name):
    _, anomaly_map, score = outputs[name]
    for i in range(score.shape[0]):
        assert score[i] == anomaly_map[i].max()


def test_draem_pooled_score_is_the_authors_21x21_mean_then_max():
    """score_pooling=True: same map; score from a 21x21 mean filter with zero padding counted."""
    x = image(2)
    with torch.no_grad():
        anomaly_map, max_score = narrow("draem", SEED)(x)
        anomaly_map2, score = narrow("draem", SEED, score_pooling=True)(x)
    torch.testing.assert_close(anomaly_map2, anomaly_map, rtol=0, atol=0)
    box = torch.full((1, 1, 21, 21), 1.0 / 441.0)
    expected = F.conv2d(F.pad(anomaly_map, (10, 10, 10, 10)), box).amax(dim=(1, 2, 3))
    torch.testing.assert_close(score, expected, rtol=1e-5, atol=1e-7)
    assert (score <= max_score).all(), "a mean never exceeds the maximum"


def test_gaussian_kernel_is_anomalibs_sigma_4_kernel():
    kernel = gaussian_kernel2d(4.0)
    assert kernel.shape == (33, 33)  # 2 * int(4 * sigma + 0.5) + 1
    torch.testing.assert_close(kernel.sum(), torch.tensor(1.0))
    assert kernel[16, 16] == kernel.max()
    torch.testing.assert_close(kernel, kernel.T)
    torch.testing.assert_close(kernel, kernel.flip(0))
    # Separable: the outer product of its normalised row sums.
    g = kernel.sum(dim=1)
    torch.testing.assert_close(kernel, torch.outer(g, g))


def test_autoencoder_map_is_the_blurred_mean_squared_error(models, outputs):
    ndimage = pytest.importorskip("scipy.ndimage")
    model = models["autoencoder"]
    x, anomaly_map, _ = outputs["autoencoder"]
    with torch.no_grad():
        error = ((x - model.reconstruct(x)) ** 2).mean(dim=1)
    # scipy's "mirror" is torch's "reflect" (edge pixel not repeated); radius 4 * sigma = 16.
    blurred = [
        torch.from_numpy(ndimage.gaussian_filter(e.double().numpy(), sigma=4.0, mode="mirror", truncate=4.0))
        for e in error
    ]
    expected = torch.stack(blurred).float().unsqueeze(1)
    torch.testing.assert_close(anomaly_map, expected, rtol=1e-4, atol=1e-7)


def test_autoencoder_batch_norm_statistics_are_calibrated(models):
    norms = [m for m in models["autoencoder"].modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 8
    for norm in norms:
        assert not norm.running_var.eq(1).all() and (norm.running_var > 0).all()
        assert norm.momentum == 0.1, "calibrate() must restore the momentum"


def test_builders_return_eval_mode(models):
    for model in models.values():
        assert not any(module.training for module in model.modules())


def test_input_norm_constants():
    assert draem.INPUT_NORM == {"build_draem": "none"}
    assert autoencoder.INPUT_NORM == {"build_conv_autoencoder": "none"}


# --- Determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILDERS))
def test_same_seed_same_outputs(name):
    first, second = narrow(name, SEED), narrow(name, SEED)
    reference = first.state_dict()
    for key, tensor in second.state_dict().items():
        assert torch.equal(tensor, reference[key]), key
    x = image(2)
    with torch.no_grad():
        (map1, score1), (map2, score2) = first(x), second(x)
    assert torch.equal(map1, map2) and torch.equal(score1, score2)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_different_seed_different_outputs(name):
    first, other = narrow(name, SEED), narrow(name, SEED + 1)
    x = image(2)
    with torch.no_grad():
        (map1, score1), (map2, score2) = first(x), other(x)
    assert not torch.equal(map1, map2)
    assert not torch.equal(score1, score2)


# --- ONNX -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILDERS))
def test_onnx_export_with_dynamic_batch_matches_pytorch(models, name, tmp_path):
    assert_onnx_matches(models[name], lambda n: image(n, SIZE, seed=11 + n), tmp_path / f"{name}.onnx")


def test_onnx_export_of_the_pooled_draem_score(tmp_path):
    """The authors' pooled score (AveragePool) exports too; narrow widths keep the test fast (the
    graph is the same as at full width)."""
    model = build_draem(seed=SEED, input_size=SIZE, recon_base_width=8, disc_base_width=4, score_pooling=True)
    assert model.score_pooling
    assert_onnx_matches(model, lambda n: image(n, SIZE, seed=11 + n), tmp_path / "draem_pooled.onnx")
