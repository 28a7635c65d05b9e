"""PatchCore and PaDiM builders (bench.suites.models.patchcore, bench.suites.models.padim).

Real forward passes run at 64x64 with a small memory bank, so each takes a fraction of a second;
the default (workload) sizes are checked on the ``meta`` device, where only shapes are computed.
The ONNX exports (one per model, dynamo exporter, dynamic batch) are most of the run time.
"""

from __future__ import annotations

import copy
import math

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from bench.suites.cost import model_cost  # noqa: E402
from tests.onnx_parity import assert_onnx_matches  # noqa: E402
from bench.suites.models import padim, patchcore  # noqa: E402
from bench.suites.models.padim import PaDiM, build_padim_resnet18, build_padim_wrn50  # noqa: E402
from bench.suites.models.patchcore import (  # noqa: E402
    PatchCore,
    build_patchcore,
    default_memory_bank_size,
)

pytestmark = pytest.mark.slow

SIZE = 64
SEED = 0
BANK = 400  # memory-bank rows of the small PatchCore
PADIM_BUILDERS = {"resnet18": build_padim_resnet18, "wide_resnet50_2": build_padim_wrn50}


def image(batch: int, size: int = SIZE, seed: int = 123) -> torch.Tensor:
    """A stand-in ImageNet-normalised image batch."""
    return torch.randn((batch, 3, size, size), generator=torch.Generator().manual_seed(seed))


def run(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return model(x)


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return {
        "patchcore": build_patchcore(seed=SEED, input_size=SIZE, memory_bank_size=BANK),
        "resnet18": build_padim_resnet18(seed=SEED, input_size=SIZE),
        "wide_resnet50_2": build_padim_wrn50(seed=SEED, input_size=SIZE),
    }


@pytest.fixture(scope="module")
def outputs(models) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """name -> (input, anomaly_map, score) of one real forward pass at batch 2."""
    x = image(2)
    return {name: (x, *run(model, x)) for name, model in models.items()}


NAMES = ["patchcore", "resnet18", "wide_resnet50_2"]


# --- Shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_output_shapes_for_batch_1_and_2(models, outputs, name):
    x, anomaly_map, score = outputs[name]
    assert anomaly_map.shape == (2, 1, SIZE, SIZE) and score.shape == (2,)
    assert anomaly_map.dtype == score.dtype == torch.float32
    assert torch.isfinite(anomaly_map).all() and torch.isfinite(score).all()
    assert x.equal(image(2)), "forward must not modify its input"
    map1, score1 = run(models[name], x[:1])
    assert map1.shape == (1, 1, SIZE, SIZE) and score1.shape == (1,)
    # Samples are independent: the first of the pair scores as it does alone.
    torch.testing.assert_close(map1, anomaly_map[:1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(score1, score[:1], rtol=1e-4, atol=1e-5)


def test_default_sizes_on_meta():
    """Workload sizes: PatchCore at 224 with an 18967-row bank; PaDiM at 256 (64x64 positions)."""
    assert default_memory_bank_size(224) == int(3629 / 15 * 28 * 28 * 0.1) == 18967
    assert default_memory_bank_size(256) == int(3629 / 15 * 32 * 32 * 0.1) == 24773
    with torch.device("meta"):
        core = PatchCore()
        r18, wrn = PaDiM("resnet18"), PaDiM("wide_resnet50_2")
        x224, x256 = torch.empty(2, 3, 224, 224), torch.empty(2, 3, 256, 256)
        assert core.memory_bank.shape == (18967, 1536)
        assert core.embed(x224).shape == (2, 1536, 28, 28)
        assert [t.shape for t in run(core, x224)] == [(2, 1, 224, 224), (2,)]
        assert r18.mean.shape == (100, 4096) and r18.inv_covariance.shape == (4096, 100, 100)
        assert wrn.mean.shape == (550, 4096) and wrn.inv_covariance.shape == (4096, 550, 550)
        assert wrn.inv_covariance.numel() * 4 == 4_956_160_000  # the 4.96 GB of the workload
        for model in (r18, wrn):
            assert [t.shape for t in run(model, x256)] == [(2, 1, 256, 256), (2,)]


def test_input_224_gives_the_papers_56_grid():
    with torch.device("meta"):
        model = PaDiM("resnet18", input_size=224)
    assert model.grid == 56 and model.inv_covariance.shape == (3136, 100, 100)


# --- PatchCore inference path -------------------------------------------------------------------


def blur_reference(anomaly_map: torch.Tensor, sigma: float = 4.0) -> torch.Tensor:
    """Separable Gaussian blur (truncated at 4 sigma, reflect padding), written independently."""
    radius = int(4 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    line = torch.exp(-0.5 * (offsets / sigma) ** 2)
    line = (line / line.sum()).float()
    padded = F.pad(anomaly_map, (radius,) * 4, mode="reflect")
    rows = F.conv2d(padded, line.view(1, 1, 1, -1))
    return F.conv2d(rows, line.view(1, 1, -1, 1))


def patchcore_reference(model: PatchCore, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PatchCore's map and score with cdist and a loop over images, step by step as the paper."""
    with torch.no_grad():
        layer2, layer3 = model.backbone(x)
        layer2, layer3 = F.avg_pool2d(layer2, 3, 1, 1), F.avg_pool2d(layer3, 3, 1, 1)
        layer3 = F.interpolate(layer3, size=layer2.shape[-2:], mode="bilinear", align_corners=False)
        embedding = torch.cat((layer2, layer3), 1)
        batch, dim, h, w = embedding.shape
        bank = model.memory_bank
        maps, scores = [], []
        for patches in embedding.permute(0, 2, 3, 1).reshape(batch, h * w, dim):
            distances = torch.cdist(patches.double(), bank.double())
            nearest, where = distances.min(dim=1)
            worst = int(nearest.argmax())
            m_star = bank[where[worst]].double()
            neighbourhood = torch.cdist(m_star[None], bank.double())[0].argsort()[: model.num_neighbors]
            to_support = torch.cdist(patches[worst][None].double(), bank[neighbourhood].double())[0]
            weight = 1 - torch.softmax(to_support, 0)[0]
            scores.append(weight * nearest[worst])
            maps.append(nearest.view(1, 1, h, w))
        anomaly_map = F.interpolate(torch.cat(maps).float(), size=x.shape[-2:], mode="nearest")
        return blur_reference(anomaly_map), torch.stack(scores).float()


def test_patchcore_map_and_score_match_the_reference_computation(models, outputs):
    x, anomaly_map, score = outputs["patchcore"]
    expected_map, expected_score = patchcore_reference(models["patchcore"], x)
    torch.testing.assert_close(anomaly_map, expected_map, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(score, expected_score, rtol=1e-4, atol=1e-5)


def test_patchcore_score_is_a_reweighted_maximum_patch_distance(models, outputs):
    """The weight 1 - softmax(...)[0] lies in (0, 1); with num_neighbors=1 the score is the
    largest patch distance, which the unblurred map reaches."""
    model = models["patchcore"]
    x, _, score = outputs["patchcore"]
    with torch.no_grad():
        patches = model.embed(x).flatten(2).transpose(1, 2)
        nearest = patchcore.euclidean_distance(patches, model.memory_bank).amin(dim=2)
    assert (score > 0).all() and (score < nearest.amax(dim=1)).all()
    plain = copy.deepcopy(model)
    plain.num_neighbors = 1
    plain.blur = torch.nn.Identity()
    plain_map, plain_score = run(plain, x)
    torch.testing.assert_close(plain_score, nearest.amax(dim=1))
    torch.testing.assert_close(plain_score, plain_map.amax(dim=(1, 2, 3)))


def test_patchcore_memory_bank_is_seeded_and_nonnegative(models):
    bank = models["patchcore"].memory_bank
    assert bank.shape == (BANK, 1536) and bank.dtype == torch.float32
    assert (bank >= 0).all() and bank.std() > 0


# --- PaDiM inference path -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet18", "wide_resnet50_2"])
def test_padim_score_is_the_max_of_the_map(outputs, name):
    _, anomaly_map, score = outputs[name]
    for i in range(score.shape[0]):
        assert score[i] == anomaly_map[i].max()


@pytest.mark.parametrize("name", ["resnet18", "wide_resnet50_2"])
def test_padim_map_is_the_per_position_mahalanobis_distance(models, outputs, name):
    """Embedding by block copies of the coarse stages (as the unfold/fold reference), channel
    subset, distance position by position, bilinear upsampling and the sigma-4 blur."""
    model = models[name]
    x, anomaly_map, _ = outputs[name]
    with torch.no_grad():
        layer1, layer2, layer3 = model.backbone(x)
        layer2 = layer2.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        layer3 = layer3.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
        embedding = torch.cat((layer1, layer2, layer3), 1)[:, model.idx].flatten(2).double()
        mean, inv_cov = model.mean.double(), model.inv_covariance.double()
        grid = model.grid
        distances = torch.empty(x.shape[0], grid * grid, dtype=torch.float64)
        for p in range(grid * grid):
            delta = embedding[:, :, p] - mean[:, p]
            distances[:, p] = torch.einsum("bi,ij,bj->b", delta, inv_cov[p], delta).sqrt()
        upsampled = F.interpolate(distances.view(-1, 1, grid, grid).float(), size=(SIZE, SIZE), mode="bilinear")
    torch.testing.assert_close(anomaly_map, blur_reference(upsampled), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["resnet18", "wide_resnet50_2"])
def test_padim_statistics_have_the_reference_layout_and_are_spd(models, name):
    model = models[name]
    c = padim.N_FEATURES[name]
    total = {"resnet18": 448, "wide_resnet50_2": 1792}[name]
    positions = (SIZE // 4) ** 2
    assert model.idx.shape == (c,) and model.idx.dtype == torch.int64
    assert model.idx.unique().numel() == c and 0 <= model.idx.min() and model.idx.max() < total
    assert model.mean.shape == (c, positions) and model.inv_covariance.shape == (positions, c, c)
    inv_cov = model.inv_covariance
    assert torch.equal(inv_cov, inv_cov.transpose(1, 2)), "every inverse covariance is symmetric"
    sample = inv_cov[:: positions // 4].double()
    assert (torch.linalg.eigvalsh(sample) > 0).all(), "and positive definite"
    assert not torch.equal(inv_cov[0], inv_cov[1]), "distinct per position"


def test_padim_statistics_are_written_in_place_and_reproducibly(models):
    """The stand-in covariance is written in place: the buffer is the one allocated at build."""
    model = models["wide_resnet50_2"]
    pointer = model.inv_covariance.data_ptr()
    model.fill_statistics(SEED)
    assert model.inv_covariance.data_ptr() == pointer
    rebuilt = build_padim_wrn50(seed=SEED, input_size=SIZE)
    assert torch.equal(rebuilt.inv_covariance, model.inv_covariance)


# --- Determinism --------------------------------------------------------------------------------


def build(name: str, seed: int) -> torch.nn.Module:
    if name == "patchcore":
        return build_patchcore(seed=seed, input_size=SIZE, memory_bank_size=BANK)
    return PADIM_BUILDERS[name](seed=seed, input_size=SIZE)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_outputs_different_seed_different_outputs(models, outputs, name):
    x, anomaly_map, score = outputs[name]
    again = build(name, SEED)
    reference = models[name].state_dict()
    for key, tensor in again.state_dict().items():
        assert torch.equal(tensor, reference[key]), key
    map2, score2 = run(again, x)
    assert torch.equal(anomaly_map, map2) and torch.equal(score, score2)
    other = build(name, SEED + 1)
    map3, score3 = run(other, x)
    assert not torch.equal(anomaly_map, map3) and not torch.equal(score, score3)
    if name != "patchcore":
        assert not torch.equal(other.idx, models[name].idx), "the channel subset follows the seed"


# --- Parameter counts and FLOPs -----------------------------------------------------------------


def conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k  # ResNet convolutions have no bias


def bn(c: int) -> int:
    return 2 * c  # weight and bias (running statistics are buffers)


def basic_stage(c_in: int, planes: int, blocks: int, stride: int) -> tuple[int, int]:
    params = 0
    for i in range(blocks):
        params += conv(c_in, planes, 3) + bn(planes) + conv(planes, planes, 3) + bn(planes)
        if i == 0 and (stride != 1 or c_in != planes):
            params += conv(c_in, planes, 1) + bn(planes)
        c_in = planes
    return params, planes


def bottleneck_stage(c_in: int, planes: int, blocks: int, stride: int, width: int) -> tuple[int, int]:
    params, mid, out = 0, planes * width // 64, planes * 4
    for i in range(blocks):
        params += conv(c_in, mid, 1) + bn(mid) + conv(mid, mid, 3) + bn(mid) + conv(mid, out, 1) + bn(out)
        if i == 0 and (stride != 1 or c_in != out):
            params += conv(c_in, out, 1) + bn(out)
        c_in = out
    return params, out


def resnet_params(kind: str, stages: int) -> int:
    """Parameters of the stem and the first ``stages`` stages (4 stages + fc: the whole net)."""
    total, c = conv(3, 64, 7) + bn(64), 64
    for index, (planes, blocks) in enumerate(
        zip((64, 128, 256, 512), (2, 2, 2, 2) if kind == "resnet18" else (3, 4, 6, 3))
    ):
        if index == min(stages, 4):
            break
        stride = 1 if index == 0 else 2
        if kind == "resnet18":
            params, c = basic_stage(c, planes, blocks, stride)
        else:
            params, c = bottleneck_stage(c, planes, blocks, stride, width=128)
        total += params
    if stages > 4:
        total += c * 1000 + 1000  # the ImageNet classifier
    return total


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_layer_formulas_give_the_published_totals():
    """torchvision's published sizes: ResNet-18 11,689,512; Wide ResNet-50-2 68,883,240."""
    assert resnet_params("resnet18", 5) == 11_689_512
    assert resnet_params("wide_resnet50_2", 5) == 68_883_240


@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts_are_the_backbone_up_to_layer3(models, name):
    kind = "wide_resnet50_2" if name == "patchcore" else name
    assert n_params(models[name]) == resnet_params(kind, 3)
    assert n_params(models[name]) == n_params(models[name].backbone)


def blur_flops(size: int) -> int:
    return 2 * size * size * 33 * 33


def test_flops_beyond_the_backbone_are_the_search_and_the_distance():
    """On meta at the default sizes: PatchCore adds the bank search 2*P*M*D per image (plus the
    reweighting and the blur); PaDiM adds one C x C product per position, 2*P*C*C per image."""
    with torch.device("meta"):
        core = PatchCore().eval()
        x = torch.empty(1, 3, 224, 224)
        p, m, d, k = 28 * 28, 18967, 1536, 9
        extra = model_cost(core, (x,))["flops"] - model_cost(core.backbone, (x,))["flops"]
        assert extra == 2 * p * m * d + 2 * m * d + 2 * k * d + blur_flops(224)
        for kind, c in (("resnet18", 100), ("wide_resnet50_2", 550)):
            model = PaDiM(kind).eval()
            x = torch.empty(2, 3, 256, 256)
            extra = model_cost(model, (x,))["flops"] - model_cost(model.backbone, (x,))["flops"]
            assert extra == 2 * (2 * 4096 * c * c + blur_flops(256))


# --- ONNX ---------------------------------------------------------------------------------------


def test_onnx_patchcore(models, tmp_path):
    assert_onnx_matches(models["patchcore"], lambda n: image(n, SIZE, seed=7 + n), tmp_path / "patchcore.onnx")


def test_onnx_padim_resnet18(models, tmp_path):
    assert_onnx_matches(models["resnet18"], lambda n: image(n, SIZE, seed=7 + n), tmp_path / "padim_r18.onnx")


def test_onnx_padim_wrn50_keeps_weights_as_external_data(tmp_path):
    onnx = pytest.importorskip("onnx")
    model = build_padim_wrn50(seed=SEED, input_size=SIZE, n_features=64)  # a smaller file
    path = tmp_path / "padim_wrn50.onnx"
    assert_onnx_matches(model, lambda n: image(n, SIZE, seed=7 + n), path)
    proto = onnx.load(str(path), load_external_data=False)
    external = [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert any(tuple(t.dims) == ((SIZE // 4) ** 2, 64, 64) for t in external)
    assert math.prod(model.inv_covariance.shape) == 256 * 64 * 64
