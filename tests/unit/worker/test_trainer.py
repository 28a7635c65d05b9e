"""The trainer of scenario=continual, in this process: PatchCore's re-fit replaces its memory bank
(size and all) and the saved module serves with it; EfficientAD's fine-tuning changes the student and
autoencoder and not the teacher; training alone is timed on a copy, leaving the served weights as
built; a second adaptation continues from the first, and a reset goes back."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.config.schema import AdaptConfig, TorchBackendConfig, TrainerConfig  # noqa: E402
from bench.worker.trainer import AdaptRequest, Trainer  # noqa: E402


def item(workload: str, tmp_path, options=None, **adapt):
    backend = TorchBackendConfig(name="cpu", impl="bench.backends.torch_eager:TorchBackend", device="cpu")
    scenario = SimpleNamespace(adapt=replace(AdaptConfig(), **adapt), train=replace(TrainerConfig(), alone_steps=1))
    return SimpleNamespace(workload=workload, batch_size=1, suite=SimpleNamespace(seed=0),
                           suite_options={"dataset": "", "boundary": "model", **(options or {})}, backend=backend,
                           scenario=scenario, scratch_dir=str(tmp_path))


def request(tmp_path, shape, version=1, n=6):
    rng = np.random.default_rng(version)
    np.save(tmp_path / f"recent{version}.npy", rng.uniform(size=(n, *shape)).astype(np.float32))
    np.save(tmp_path / f"replay{version}.npy", rng.uniform(size=(n, *shape)).astype(np.float32))
    return AdaptRequest(recent_path=str(tmp_path / f"recent{version}.npy"),
                        replay_path=str(tmp_path / f"replay{version}.npy"), out_dir=str(tmp_path / f"v{version}"),
                        model_key=f"test-adapted-{version}", version=version)


@pytest.mark.slow
def test_patchcore_refit_replaces_the_memory_bank_and_the_saved_module_serves_it(tmp_path):
    trainer = Trainer(item("patchcore", tmp_path, {"input_size": 64}, fit_images=4, replay_ratio=0.5))
    info = trainer.start()
    assert info["kind"] == "fit" and info["alone"]["fits"] == 1 and info["alone"]["samples_per_s"] > 0
    before = trainer.task.model.memory_bank.clone()
    reply = trainer.adapt(request(tmp_path, (3, 64, 64)))
    assert reply.ok and reply.kind == "fit" and reply.samples == 4 and reply.model_format == "module"
    bank = trainer.task.model.memory_bank
    assert bank.shape[0] == reply.fit["coreset_rows"] and bank.shape != before.shape
    served = torch.load(reply.model_path, weights_only=False)
    assert torch.equal(served.memory_bank, bank) and served.memory_bank_size == bank.shape[0]
    reference = np.load(reply.reference_path)
    with torch.inference_mode():
        score_map, score = served(torch.from_numpy(reference["inputs"]))
    np.testing.assert_allclose(score_map.numpy(), reference["arr_0"], rtol=1e-5, atol=1e-6)
    assert reply.conversion == {"cache_hit": True, "build_s": 0.0, "stages": {}}  # served as the module


@pytest.mark.slow
def test_efficientad_fine_tunes_student_and_autoencoder_only(tmp_path):
    trainer = Trainer(item("efficientad_s", tmp_path, steps=1, batch_size=2))
    # The task and its session without start()'s timing alone (two more steps of the 256-px model).
    trainer.task = trainer._task()
    trainer.session = trainer._session(trainer.task)
    model = trainer.task.model
    teacher = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    student = {k: v.clone() for k, v in model.student.state_dict().items()}
    reply = trainer.adapt(request(tmp_path, (3, 256, 256), n=4))
    assert reply.ok and reply.steps == 1 and len(reply.losses) == 1 and all(np.isfinite(reply.losses))
    assert all(torch.equal(v, model.teacher.state_dict()[k]) for k, v in teacher.items())
    assert any(not torch.equal(v, model.student.state_dict()[k]) for k, v in student.items())


def test_a_second_adaptation_continues_from_the_first_and_reset_goes_back(tmp_path):
    trainer = Trainer(item("autoencoder", tmp_path, {"input_size": 32}, steps=2, batch_size=2))
    info = trainer.start()
    assert info["alone"]["steps"] == 1 and info["alone"]["samples_per_s"] > 0
    built = {k: v.clone() for k, v in trainer.task.model.state_dict().items()}
    # Training alone ran on a copy: the served weights are still those the seed builds.
    fresh = trainer._task().model
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in built.items())
    assert trainer.adapt(request(tmp_path, (3, 32, 32))).ok
    first = {k: v.clone() for k, v in trainer.task.model.state_dict().items()}
    assert trainer.adapt(request(tmp_path, (3, 32, 32), version=2)).ok
    assert any(not torch.equal(v, trainer.task.model.state_dict()[k]) for k, v in first.items())
    trainer.reset()
    assert all(torch.equal(v, trainer.task.model.state_dict()[k]) for k, v in built.items())


def test_samples_of_the_wrong_shape_fail_the_adaptation(tmp_path):
    trainer = Trainer(item("autoencoder", tmp_path, {"input_size": 32}, steps=1, batch_size=2))
    trainer.start()
    with pytest.raises(RuntimeError):  # the trainer's main loop answers it as a failed adaptation
        trainer.adapt(request(tmp_path, (3, 16, 16)))
