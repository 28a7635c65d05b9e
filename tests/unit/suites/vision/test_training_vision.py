"""The vision suite's training tasks (bench.suites.training, bench.suites.models.vision.classifier_train):
each classifier fine-tunes the module the inference side builds, whole, with cross-entropy on seeded
labels and its optimizer; the detector and the pipeline boundary are refused in one line.

The classifiers run at their 224x224 input, one step at batch 1 (0.2 to 2 s each on two CPU cores):
those tests are marked slow. Nothing here asserts a speed."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from bench.backends.torch_training import prepare_training  # noqa: E402
from bench.suites.base import SuiteOptionError  # noqa: E402
from bench.suites.models.vision.classifier_train import LABEL_SEED_OFFSET, seeded_labels  # noqa: E402
from bench.suites.models.vision.common import NUM_CLASSES  # noqa: E402
from bench.suites.training import NOT_TRAINABLE, TRAINING, check_trainable, training_task  # noqa: E402
from bench.suites.vision import SUITE  # noqa: E402

SEED = 0
CLASSIFIERS = ("resnet50", "mobilenetv3_large", "efficientnet_b0", "vit_b16", "convnext_tiny")
# name: (optimizer, lr, other settings)
RECIPES = {
    "resnet50": ("SGD", 0.01, {"momentum": 0.9}),
    "mobilenetv3_large": ("SGD", 0.01, {"momentum": 0.9}),
    "efficientnet_b0": ("SGD", 0.01, {"momentum": 0.9}),
    "vit_b16": ("SGD", 0.01, {"momentum": 0.9}),
    "convnext_tiny": ("AdamW", 5e-5, {"weight_decay": 1e-8}),
}
OPTIONS = {"dataset": "", "boundary": "model", "tile_size": 256, "data_path": None}


def test_the_classifiers_train_and_the_detector_does_not():
    assert set(TRAINING["vision"]) == set(CLASSIFIERS) == set(RECIPES)
    assert set(NOT_TRAINABLE["vision"]) == {"yolox_s"}
    assert set(SUITE.names()) == set(CLASSIFIERS) | {"yolox_s"}


def test_the_detector_is_refused_in_one_line():
    for refuse in (lambda: training_task("yolox_s", 1, SEED, OPTIONS),
                   lambda: check_trainable("vision", ["resnet50", "yolox_s"], OPTIONS)):
        with pytest.raises(SuiteOptionError) as info:
            refuse()
        assert info.value.key == "suite.only" and info.value.value == "yolox_s"
        assert "resnet50" in info.value.fix and "convnext_tiny" in info.value.fix and "yolox_s" not in info.value.fix
        assert "\n" not in str(info.value) and "detector" in str(info.value)


def test_the_pipeline_boundary_is_refused():
    with pytest.raises(SuiteOptionError) as info:
        training_task("resnet50", 1, SEED, {**OPTIONS, "boundary": "pipeline"})
    assert info.value.key == "suite.boundary"


def test_labels_are_seeded_classes():
    labels = seeded_labels(64, 5)
    assert labels.dtype == torch.int64 and torch.equal(labels, seeded_labels(64, 5))
    assert 0 <= int(labels.min()) and int(labels.max()) < NUM_CLASSES
    assert not torch.equal(labels, seeded_labels(64, 6))


@pytest.mark.slow
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_one_fine_tuning_step_trains_the_inference_model(name):
    task = training_task(name, 1, SEED, OPTIONS)
    instance = SUITE.make(SUITE.adapted(SUITE.get(name), OPTIONS), 1, SEED, OPTIONS)
    expected = instance.model.state_dict()
    assert list(task.model.state_dict()) == list(expected)
    assert all(torch.equal(v, expected[k]) for k, v in task.model.state_dict().items())
    images, labels = task.batch
    assert torch.equal(images, instance.inputs[0])  # the inference side's images at the model boundary
    assert torch.equal(labels, seeded_labels(1, SEED + LABEL_SEED_OFFSET))
    optimizer, lr, settings = RECIPES[name]
    assert (task.optimizer, task.lr, task.optimizer_options) == (optimizer, lr, settings)
    assert {id(p) for p in task.parameters} == {id(p) for p in task.model.parameters()}  # the whole network
    assert task.info["frozen"] == [] and task.info["input_shape"] == [3, 224, 224]
    before = [p.detach().clone() for p in task.parameters]
    session = prepare_training(task, "cpu", "fp32")
    assert task.model.training
    session.step()
    (loss,) = session.losses
    assert math.isfinite(loss) and loss > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in task.parameters)
    assert any(not torch.equal(b, p.detach()) for b, p in zip(before, task.parameters))
    # A batch made of new samples: the images and as many seeded labels.
    samples = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    batch = task.batch_of(samples)
    assert batch[0] is samples and torch.equal(batch[1], seeded_labels(2, SEED + LABEL_SEED_OFFSET))
    with torch.no_grad():
        value = task.loss(batch)
    assert value.dim() == 0 and math.isfinite(float(value))
