"""The registry of every suite's training tasks and the training side of the anomaly suite
(bench.suites.training and each method's bench.suites.models.<method>_train), the PyTorch training
step (bench.backends.torch_training) and the timed fit (bench.backends.torch_training.fit_cost). The
time series and vision tasks are tested beside their suites' other tests (timeseries/, vision/).

Backprop models train at batch 1 or 2 on small inputs (32x32, as tests/test_models_flow_distill.py
runs them; EfficientAD only at its 256x256, which its autoencoder needs), each a few steps on fixed
data with the method's own optimizer and learning rate; the fits run on a handful of 64x64 (or
32x32) images. Nothing here asserts a speed.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import bench.backends.torch_training as bench_training  # noqa: E402
from bench.backends.torch_training import prepare_training  # noqa: E402
from bench.backends.torch_training import fit_cost  # noqa: E402
from bench.suites.anomaly import SUITE  # noqa: E402
from bench.suites.base import SuiteOptionError  # noqa: E402
from bench.suites.models.fastflow import FlowStep  # noqa: E402
from bench.suites.models.patchcore import CORESET_SAMPLING_RATIO, EMBEDDING_DIM  # noqa: E402
from bench.suites.models.padim import COVARIANCE_REGULARISATION  # noqa: E402
from bench.suites.models.draem_train import focal_loss, ssim, synthetic_anomalies  # noqa: E402
from bench.suites.models.efficientad_train import hard_mean  # noqa: E402
from bench.suites.models.patchcore_train import greedy_coreset  # noqa: E402
from bench.suites.base import resolve  # noqa: E402
from bench.suites.training import NOT_TRAINABLE, TRAINABLE, TRAINING, training_task  # noqa: E402

pytestmark = pytest.mark.slow

SEED = 0
SMALL = {"input_size": 32}


def regression_loss(model, inputs):
    """A user's loss, as model.loss names it: (model, inputs) -> scalar."""
    (x,) = inputs
    return (model(x) - 1.0).pow(2).mean()


CUSTOM = {"model": {"target": "tests.fakes:build_tiny", "input_shape": [16],
                    "loss": "tests.unit.suites.test_training:regression_loss"}}


def parameters_of(task, role):
    return [p.detach().clone() for p in task.modules[role].parameters()]


def changed(before, module):
    return any(not torch.equal(b, p.detach()) for b, p in zip(before, module.parameters()))


# --- the catalog ------------------------------------------------------------------------------


def test_every_anomaly_workload_says_how_it_trains():
    anomaly = TRAINING["anomaly"]
    assert set(anomaly) == set(SUITE.names())
    assert all(TRAINABLE[name] == kind for name, kind in anomaly.items())
    assert set(anomaly.values()) == {"backprop", "fit"}
    assert {name for name, kind in anomaly.items() if kind == "fit"} == {"patchcore", "padim_resnet18", "padim_wrn50"}


def test_the_registry_names_each_suites_workloads_once():
    """TRAINING and NOT_TRAINABLE together hold every workload of each trainable suite, each once;
    workload names are unique across every suite bench ships, so a name alone finds its task."""
    suites = {name: resolve(f"bench.suites.{name}:SUITE") for name in ("anomaly", "timeseries", "vision", "video")}
    everything = [name for suite in suites.values() for name in suite.names()]
    assert len(everything) == len(set(everything))
    for name, kinds in TRAINING.items():
        assert set(kinds) | set(NOT_TRAINABLE.get(name, {})) == set(suites[name].names()), name
        assert not set(kinds) & set(NOT_TRAINABLE.get(name, {}))
    assert set(TRAINABLE) == {name for kinds in TRAINING.values() for name in kinds}


def test_an_unknown_workload_is_refused_by_name():
    with pytest.raises(SuiteOptionError, match="no_such_model.*is not a trainable workload") as info:
        training_task("no_such_model", 1, SEED, {})
    assert info.value.key == "suite.only" and "efficientad_s" in info.value.fix


def test_training_is_measured_at_the_model_boundary_only():
    with pytest.raises(SuiteOptionError) as info:
        training_task("autoencoder", 1, SEED, {"boundary": "pipeline"})
    assert info.value.key == "suite.boundary"


def test_efficientad_refuses_a_size_its_autoencoder_cannot_take():
    with pytest.raises(SuiteOptionError) as info:
        training_task("efficientad_s", 1, SEED, SMALL)
    assert info.value.key == "input_size" and info.value.value == 32


# --- backprop methods: one step each, and the loss going down ----------------------------------

# name: (batch, steps, trained roles, frozen roles). Batch 2 where batch norm in train mode meets a
# 1x1 map at 32x32 (it needs more than one value per channel); EfficientAD at the method's batch 1.
BACKPROP = {
    "autoencoder": (2, 4, ["autoencoder"], []),
    "fastflow": (2, 4, ["norms", "flows"], ["feature_extractor"]),
    "stfpm": (2, 4, ["student"], ["teacher"]),
    "reverse_distillation": (2, 4, ["bottleneck", "decoder"], ["encoder"]),
    "draem": (2, 5, ["reconstructive", "discriminative"], []),
    "efficientad_s": (1, 3, ["student", "autoencoder"], ["teacher"]),
}


@pytest.mark.parametrize("name", list(BACKPROP))
def test_a_training_step_trains_what_the_method_trains_and_lowers_the_loss(name):
    batch, steps, trained, frozen = BACKPROP[name]
    task = training_task(name, batch, SEED, {} if name.startswith("efficientad") else SMALL)
    assert task.kind == TRAINABLE[name] == "backprop"
    assert all(t.shape[0] == batch and t.dtype == torch.float32 for t in task.batch)
    assert task.info["trainable_params"] == sum(p.numel() for p in task.parameters) > 0
    before = {role: parameters_of(task, role) for role in trained + frozen}
    session = prepare_training(task, "cpu", "fp32")
    for role in trained:
        assert task.modules[role].training
    for role in frozen:
        assert not task.modules[role].training
        assert all(not p.requires_grad for p in task.modules[role].parameters())
    for _ in range(steps):
        session.step()
    losses = session.losses
    assert len(losses) == steps and all(math.isfinite(v) for v in losses)
    assert sum(losses[-2:]) / 2 < losses[0], losses
    for role in trained:
        assert changed(before[role], task.modules[role]), role
    for role in frozen:
        assert not changed(before[role], task.modules[role]), role


def test_efficientad_m_step_trains_student_and_autoencoder_only():
    # EfficientAD-M costs ~3x EfficientAD-S per step at 256x256 on this machine's CPU; its loss is
    # the same code as S's (tested above for going down), so one step here.
    task = training_task("efficientad_m", 1, SEED, {})
    before = {role: parameters_of(task, role) for role in ("student", "autoencoder", "teacher")}
    session = prepare_training(task, "cpu", "fp32")
    session.step()
    (loss,) = session.losses
    assert math.isfinite(loss) and loss > 0
    assert changed(before["student"], task.modules["student"])
    assert changed(before["autoencoder"], task.modules["autoencoder"])
    assert not changed(before["teacher"], task.modules["teacher"])
    assert task.info["method"] == "EfficientAD-M" and task.optimizer == "Adam" and task.lr == 1e-4


def test_hard_mean_is_the_mean_at_or_above_the_quantile():
    distance = torch.rand(3, 7, 11, 13, generator=torch.Generator().manual_seed(1))
    for q in (0.999, 0.9, 0.5):
        threshold = torch.quantile(distance.flatten(), q)
        expected = distance[distance >= threshold].mean()
        torch.testing.assert_close(hard_mean(distance, q), expected)


def test_fastflow_log_det_is_the_log_determinant_of_the_jacobian():
    torch.manual_seed(3)
    step = FlowStep(channels=4, kernel_size=3).double()
    with torch.no_grad():
        step.global_scale.add_(torch.randn_like(step.global_scale))  # scales away from 1
        step.subnet[2].weight.mul_(5.0)  # a coupling far from the identity
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    y, log_det = step.forward_and_log_det(x)
    torch.testing.assert_close(y, step(x))
    jacobian = torch.autograd.functional.jacobian(lambda t: step(t.view_as(x)).flatten(), x.flatten())
    sign, expected = torch.linalg.slogdet(jacobian)
    assert sign > 0
    torch.testing.assert_close(log_det, expected.view(1))


def test_ssim_and_focal_loss():
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 24, 24, generator=generator)
    noisy = (x + 0.2 * torch.randn(x.shape, generator=generator)).clamp(0, 1)
    torch.testing.assert_close(ssim(x, x), torch.tensor(1.0))
    assert 0.0 < ssim(x, noisy) < ssim(x, (x + noisy) / 2) < 1.0
    logits = torch.randn(2, 2, 5, 5, generator=generator)
    mask = (torch.rand(2, 1, 5, 5, generator=generator) > 0.5).float()
    # gamma 0 is cross-entropy; gamma 2 weighs well-classified pixels down.
    torch.testing.assert_close(focal_loss(logits, mask, gamma=0.0), F.cross_entropy(logits, mask[:, 0].long()))
    assert focal_loss(logits, mask) < focal_loss(logits, mask, gamma=0.0)


def test_synthetic_anomalies_are_seeded_masks_pasted_into_clean_images():
    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    augmented, masks = synthetic_anomalies(images, seed=5)
    again, masks_again = synthetic_anomalies(images, seed=5)
    assert torch.equal(augmented, again) and torch.equal(masks, masks_again)
    assert set(masks.unique().tolist()) <= {0.0, 1.0} and masks.shape == (8, 1, 32, 32)
    outside = masks.expand_as(images) == 0
    assert torch.equal(augmented[outside], images[outside])
    inside = masks.expand_as(images) == 1
    assert inside.any() and not torch.equal(augmented[inside], images[inside])
    assert (masks.flatten(1).sum(1) == 0).any()  # some images stay clean


# --- precision, recording, compile --------------------------------------------------------------


def test_bf16_autocast_step_on_the_cpu_keeps_fp32_master_weights():
    task = training_task("autoencoder", 2, SEED, SMALL)
    seen = []
    first_conv = task.modules["autoencoder"].encoder[0][0]
    first_conv.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    session = prepare_training(task, "cpu", "bf16")
    for _ in range(3):
        session.step()
    assert seen == [torch.bfloat16] * 3
    assert all(p.dtype == torch.float32 for p in task.parameters)
    assert all(math.isfinite(v) for v in session.losses)
    settings = session.effective_settings()
    assert settings["amp_dtype"] == "bfloat16" and settings["grad_scaler"] is False
    assert settings["master_weights"] == "float32" and settings["device"] == "cpu"
    assert settings["optimizer"] == "Adam" and settings["lr"] == 1e-3


def test_fp16_on_the_cpu_runs_with_a_grad_scaler_where_torch_has_it(monkeypatch):
    if not bench_training.cpu_fp16_autocast():
        pytest.skip(f"torch {torch.__version__} has no float16 CPU autocast")
    session = prepare_training(training_task("custom", 4, SEED, CUSTOM), "cpu", "fp16")
    session.step()
    assert session.effective_settings()["grad_scaler"] is True
    assert session.effective_settings()["amp_dtype"] == "float16"
    assert math.isfinite(session.losses[0])


def test_fp16_on_a_cpu_without_float16_autocast_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(bench_training, "cpu_fp16_autocast", lambda: False)
    with pytest.raises(ValueError, match="fp16") as info:
        prepare_training(training_task("custom", 4, SEED, CUSTOM), "cpu", "fp16")
    assert "\n" not in str(info.value) and "bf16" in str(info.value)


def test_an_unknown_precision_and_a_missing_gpu_are_refused():
    task = training_task("custom", 4, SEED, CUSTOM)
    with pytest.raises(ValueError, match="int4"):
        prepare_training(task, "cpu", "int4")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            prepare_training(task, "cuda", "fp32")


class NoHostRead(torch.Tensor):
    """A loss that fails if anything reads its value back to the host."""

    def item(self):
        raise AssertionError("loss.item() inside step()")

    def tolist(self):
        raise AssertionError("loss.tolist() inside step()")

    def __float__(self):
        raise AssertionError("float(loss) inside step()")

    def __bool__(self):
        raise AssertionError("bool(loss) inside step()")


def test_step_records_every_loss_without_reading_it_back(monkeypatch):
    monkeypatch.setattr(bench_training, "_LOSS_CHUNK", 2)  # cross buffer boundaries
    task = training_task("custom", 4, SEED, CUSTOM)
    first = float(task.loss(task.batch).detach())
    plain = task.loss
    task.loss = lambda batch: plain(batch).as_subclass(NoHostRead)
    session = prepare_training(task, "cpu", "fp32")
    for _ in range(5):
        session.step()
    assert len(session._buffers) == 3
    losses = session.losses
    assert len(losses) == 5 and losses[0] == pytest.approx(first)
    quiet = prepare_training(training_task("custom", 4, SEED, CUSTOM), "cpu", "fp32", record_losses=False)
    quiet.step()
    assert quiet.losses == []


def test_compiled_step_trains():
    task = training_task("custom", 8, SEED, CUSTOM)
    session = prepare_training(task, "cpu", "fp32", compile=True)
    for _ in range(4):
        session.step()
    losses = session.losses
    assert losses[-1] < losses[0]
    assert session.effective_settings()["compiled"] is True


# --- a model the user brings ------------------------------------------------------------------


def test_a_custom_model_trains_with_its_loss():
    task = training_task("custom", 8, SEED, CUSTOM)
    assert task.kind == "backprop" and task.info["trainable_params"] == 16 * 32 + 32 + 32 * 4 + 4
    assert task.batch[0].shape == (8, 16)
    session = prepare_training(task, "cpu", "fp32")
    for _ in range(10):
        session.step()
    losses = session.losses
    assert sum(losses[-3:]) / 3 < losses[0]


def test_a_custom_model_without_a_loss_is_refused():
    model = dict(CUSTOM["model"])
    del model["loss"]
    with pytest.raises(SuiteOptionError) as info:
        training_task("custom", 1, SEED, {"model": model})
    assert info.value.key == "model.loss" and "(model, inputs)" in info.value.fix


def test_a_custom_loss_that_cannot_be_imported_is_refused():
    model = {**CUSTOM["model"], "loss": "tests.unit.suites.test_training:no_such_loss"}
    with pytest.raises(SuiteOptionError, match="cannot be imported") as info:
        training_task("custom", 1, SEED, {"model": model})
    assert info.value.key == "model.loss"


# --- fits ---------------------------------------------------------------------------------------


def test_greedy_coreset_is_the_farthest_point_rule():
    features = torch.randn(60, 5, generator=torch.Generator().manual_seed(6))
    chosen = greedy_coreset(features, 12, seed=7).tolist()
    assert len(set(chosen)) == 12
    for i in range(1, 12):
        nearest = torch.cdist(features, features[chosen[:i]]).min(dim=1).values
        assert chosen[i] == int(nearest.argmax())


def test_patchcore_fit_fills_the_memory_bank_with_a_coreset_of_patches():
    task = training_task("patchcore", 2, SEED, {"input_size": 64})
    assert task.kind == "fit" and task.parameters == [] and task.loss is None
    model = task.modules["model"]
    images = task.make_images(4)
    result = task.fit(images)
    patches = 4 * 8 * 8  # 64x64 input: layer2's 8x8 grid
    rows = int(patches * CORESET_SAMPLING_RATIO)
    assert result["patches"] == patches and result["coreset_rows"] == rows
    assert model.memory_bank.shape == (rows, EMBEDDING_DIM) and model.memory_bank_size == rows
    with torch.no_grad():
        embedding = model.embed(images).flatten(2).transpose(1, 2).reshape(-1, EMBEDDING_DIM)
        distance = torch.cdist(model.memory_bank, embedding, compute_mode="donot_use_mm_for_euclid_dist")
        assert distance.min(dim=1).values.max() < 1e-4  # every row is a patch
        anomaly_map, score = model(images[:2])
    assert anomaly_map.shape == (2, 1, 64, 64) and torch.isfinite(score).all()
    with pytest.raises(ValueError, match="fit task"):
        prepare_training(task, "cpu", "fp32")


@pytest.mark.parametrize("name,size,features", [("padim_resnet18", 64, 100), ("padim_wrn50", 32, 550)])
def test_padim_fit_gives_the_mean_and_inverse_covariance_per_position(name, size, features):
    task = training_task(name, 2, SEED, {"input_size": size})
    model = task.modules["model"]
    images = task.make_images(5)
    result = task.fit(images)
    positions = (size // 4) ** 2
    assert result == {"images": 5, "positions": positions, "features": features,
                      "regularisation": COVARIANCE_REGULARISATION}
    assert model.mean.shape == (features, positions)
    assert model.inv_covariance.shape == (positions, features, features)
    with torch.no_grad():
        embedding = model.embed(images).flatten(2).double()  # [N, C, P]
    p = positions // 3
    vectors = embedding[:, :, p]
    covariance = torch.cov(vectors.T) + COVARIANCE_REGULARISATION * torch.eye(features, dtype=torch.float64)
    torch.testing.assert_close(model.mean[:, p].double(), vectors.mean(dim=0), rtol=1e-4, atol=1e-5)
    identity = model.inv_covariance[p].double() @ covariance
    torch.testing.assert_close(identity, torch.eye(features, dtype=torch.float64), rtol=0, atol=2e-3)


def test_padim_fit_holds_after_the_thread_count_is_set():
    """backend.threads calls torch.set_num_threads; after it, MKL's batched LU (torch.linalg.inv) failed
    on 550x550 covariances ("Pivots given to lu_solve must all be >= 1"). The fit inverts by Cholesky."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        task = training_task("padim_wrn50", 2, SEED, {"input_size": 32})
        task.fit(task.make_images(5))
    finally:
        torch.set_num_threads(before)
    model = task.modules["model"]
    assert torch.isfinite(model.inv_covariance).all()
    inverse = model.inv_covariance[7].double()
    torch.testing.assert_close(inverse, inverse.T, rtol=0, atol=1e-3)  # the inverse of a symmetric matrix


def test_fit_cost_times_the_fit_per_image():
    task = training_task("padim_resnet18", 2, SEED, {"input_size": 64})
    cost = fit_cost(task, images=4, device="cpu", repeats=2)
    assert len(cost["per_image_s_all"]) == 2 and all(t > 0 for t in cost["per_image_s_all"])
    assert cost["per_image_s"] == pytest.approx(sum(cost["per_image_s_all"]) / 2)  # the median of two
    for total, per_image in zip(cost["total_s_all"], cost["per_image_s_all"]):
        assert per_image == pytest.approx(total / 4)
    assert cost["fit"]["images"] == 4 and cost["method"] == "PaDiM"
    with pytest.raises(ValueError, match="backprop task"):
        fit_cost(training_task("custom", 1, SEED, CUSTOM), images=4, device="cpu", repeats=1)
