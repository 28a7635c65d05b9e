"""Training of the anomaly suite's methods, as the worker measures it: the registry.

For each workload, ``training_task`` says what one training step (the backprop methods) or one fit
(the methods that fit statistics without backprop) does. It is built from the same builders the
inference side uses, so the modules trained are the modules measured at inference; the inference
wrappers (normalisation, maps, scores) are taken apart into the parts each method trains and the
parts it keeps frozen, as the methods' reference implementations do.

Each method's task (its loss, trained parts and optimizer, or its fit; facts from the papers and
the reference code read for them, no code copied) lives beside its model, in
suites/models/<method>_train.py (``_METHODS`` below names them): EfficientAD-S/-M, FastFlow, STFPM,
Reverse Distillation, DRAEM and the autoencoder train by backprop; PatchCore and PaDiM fit
(``kind == "fit"``; their cost is time per training image, see bench.backends.torch_training.fit_cost).
A backend that can train turns a task into a session (bench.backends.base.Backend.prepare_training).

What is simplified for every method, beside each method's own simplifications (its module
docstring, and the task's ``info["simplified"]``):

* training data are seeded synthetic images of the model's input, fixed for the whole run (one
  batch, reused every step): speed does not depend on the pixel values;
* no learning-rate schedules (they cost nothing per step).

A model the user brings (``suite=custom``, workload ``custom``): ``model.target`` builds the module
(as for inference) and ``model.loss=pkg.mod:loss_fn`` gives ``loss_fn(model, inputs) -> scalar
tensor``, ``inputs`` the tuple of input tensors (one tensor of ``model.input_shape`` per sample);
Adam, lr 1e-3.

torch is imported only inside functions: ``TRAINABLE`` can be read without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

from bench.suites.base import SuiteOptionError, Workload, resolve

__all__ = ["TRAINABLE", "CUSTOM_WORKLOAD", "TrainTask", "training_task", "freeze", "trainable", "embed_all"]

TRAINABLE: dict[str, str] = {
    "efficientad_s": "backprop",
    "efficientad_m": "backprop",
    "patchcore": "fit",
    "padim_resnet18": "fit",
    "padim_wrn50": "fit",
    "fastflow": "backprop",
    "stfpm": "backprop",
    "reverse_distillation": "backprop",
    "draem": "backprop",
    "autoencoder": "backprop",
}
# The custom suite's one workload: a backprop task from model.target and model.loss.
CUSTOM_WORKLOAD = "custom"

# Each workload's task maker, ``(model, make_images, batch_size, seed) -> TrainTask``, beside its model.
_METHODS: dict[str, str] = {
    "efficientad_s": "bench.suites.models.efficientad_train:efficientad_task",
    "efficientad_m": "bench.suites.models.efficientad_train:efficientad_task",
    "patchcore": "bench.suites.models.patchcore_train:patchcore_task",
    "padim_resnet18": "bench.suites.models.padim_train:padim_task",
    "padim_wrn50": "bench.suites.models.padim_train:padim_task",
    "fastflow": "bench.suites.models.fastflow_train:fastflow_task",
    "stfpm": "bench.suites.models.stfpm_train:stfpm_task",
    "reverse_distillation": "bench.suites.models.reverse_distillation_train:reverse_distillation_task",
    "draem": "bench.suites.models.draem_train:draem_task",
    "autoencoder": "bench.suites.models.autoencoder_train:autoencoder_task",
}
assert set(_METHODS) == set(TRAINABLE)


@dataclass
class TrainTask:
    """What one training step, or one fit, of a workload does. See the module docstring."""

    kind: str  # "backprop" or "fit"
    modules: dict[str, Any]  # every module the step touches, frozen ones included (for .to(device))
    parameters: list[Any]  # what the optimizer updates (empty for fit)
    batch: tuple[Any, ...]  # fixed, seeded training data of batch_size samples (host, fp32)
    loss: Optional[Callable[[tuple[Any, ...]], Any]] = None  # backprop: forward + the method's loss
    fit: Optional[Callable[[Any], dict[str, Any]]] = None  # fit: the whole fit on (N, C, H, W) images
    optimizer: str = "Adam"
    lr: float = 1e-3
    info: dict[str, Any] = field(default_factory=dict)
    # Beyond the fields asked for: the optimizer's other settings (betas, momentum, weight decay),
    # and for fit tasks a maker of n seeded training images like those of the batch.
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    make_images: Optional[Callable[[int], Any]] = None
    # Continual learning (scenario=continual) adapts the task on recent samples: ``model`` is the whole
    # inference module whose parts the task trains or fits (exported once adapted); ``make_batch(samples)``
    # turns samples (N, *input shape, the model's input space) into a step's batch; None: ``(samples,)``.
    model: Any = None
    make_batch: Optional[Callable[[Any], tuple[Any, ...]]] = None

    def batch_of(self, samples: Any) -> tuple[Any, ...]:
        """A training step's batch made of ``samples`` (host tensors): what adaptation trains on."""
        return tuple(self.make_batch(samples)) if self.make_batch is not None else (samples,)

    def set_modes(self) -> None:
        """Train mode for each module that owns a trained parameter, eval mode for the others: a
        frozen teacher, encoder or backbone keeps its batch-norm statistics and drops no units."""
        trained = {id(p) for p in self.parameters}
        for module in self.modules.values():
            module.train(any(id(p) in trained for p in module.parameters()))


def training_task(workload: str, batch_size: int, seed: int, options: dict[str, Any]) -> TrainTask:
    """The training task of ``workload`` at ``batch_size``, seeded.

    ``options`` are the suite options the inference side gets. Anomaly workloads train at the
    model boundary only (preprocessed tensors in); ``options["input_size"]``, when set, builds the
    model for a smaller square input than the workload's (the tests' small models; a model that
    cannot take it is refused). ``workload == "custom"`` reads ``options["model"]``: ``target``,
    ``input_shape`` (as for inference) and ``loss``.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    options = dict(options or {})
    if workload == CUSTOM_WORKLOAD:
        return _custom_task(int(batch_size), seed, options)
    if workload not in TRAINABLE:
        raise SuiteOptionError("suite.only", workload,
                               f"choose among {', '.join(TRAINABLE)}, or suite=custom with model.target and "
                               "model.loss", "is not a trainable workload")
    from bench.suites.anomaly import SUITE

    SUITE.check(options)
    boundary = options.get("boundary") or "model"
    if boundary != "model":
        raise SuiteOptionError("suite.boundary", boundary,
                               "use suite.boundary=model (a training step takes preprocessed tensors)",
                               "is not measured in training")
    spec = SUITE.get(workload)
    size = int(options.get("input_size") or spec.input_shape[-1])
    model = _build(spec, size, seed)
    spec = replace(spec, input_shape=(spec.input_shape[0], size, size))

    def make_images(n: int, offset: int = 0) -> Any:
        return spec.make_inputs(n, seed + offset)[0]

    task = resolve(_METHODS[workload])(model, make_images, int(batch_size), seed)
    task.model = model
    task.info.update(workload=workload, kind=task.kind, input_shape=list(spec.input_shape),
                     input_norm=spec.input_norm, batch_size=int(batch_size), seed=seed,
                     **_parameter_counts(task))
    return task


# --- building -----------------------------------------------------------------------------------


def _build(spec: Workload, size: int, seed: int) -> Any:
    if size == spec.input_shape[-1]:
        return spec.build(seed)
    if spec.family == "EfficientAD":
        raise SuiteOptionError("input_size", size, f"use {spec.input_shape[-1]}",
                               "is not a size EfficientAD's autoencoder is defined for")
    import torch

    torch.manual_seed(seed)
    try:
        return resolve(spec.builder)(seed=seed, input_size=size).eval()
    except ValueError as exc:
        raise SuiteOptionError("input_size", size, f"use a size {spec.name} can take ({exc})",
                               "is refused by the model") from None


def _parameter_counts(task: TrainTask) -> dict[str, int]:
    trained = {id(p) for p in task.parameters}
    seen: dict[int, int] = {}
    for module in task.modules.values():
        for p in module.parameters():
            seen[id(p)] = p.numel()
    return {"trainable_params": sum(n for key, n in seen.items() if key in trained),
            "frozen_params": sum(n for key, n in seen.items() if key not in trained)}


def freeze(*modules: Any) -> None:
    """Take ``modules``' parameters out of training (requires_grad off): a frozen teacher, encoder or
    backbone."""
    for module in modules:
        module.requires_grad_(False)


def trainable(*modules: Any) -> list[Any]:
    """The parameters of ``modules`` that require gradients, each once, in order: what the optimizer
    updates."""
    params: list[Any] = []
    seen: set[int] = set()
    for module in modules:
        for p in module.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    return params


def embed_all(model: Any, images: Any, batch_size: int) -> Any:
    """A fit's embedding of every training image, ``batch_size`` images at a time, on the model's
    device (PatchCore's and PaDiM's ``embed``)."""
    device = next(model.parameters()).device
    return [model.embed(chunk.to(device)) for chunk in images.split(batch_size)]


# --- a model the user brings --------------------------------------------------------------------

_LOSS_FIX = "give model.loss=package.module:function, a function (model, inputs) -> scalar loss tensor"


def _custom_task(batch_size: int, seed: int, options: dict[str, Any]) -> TrainTask:
    from bench.suites.custom import SUITE as CUSTOM

    model_options = dict(options.get("model") or {})
    if model_options.get("path") and not model_options.get("target"):
        raise SuiteOptionError("model.path", model_options["path"],
                               "give model.target=<package.module:function> and model.loss=<package.module:function>",
                               "is an ONNX file, which cannot be trained here")
    loss_path = model_options.get("loss")
    if not loss_path:
        raise SuiteOptionError("model.loss", loss_path, _LOSS_FIX, "is needed to train model.target")
    CUSTOM.check(options)
    try:
        loss_fn = resolve(loss_path)
    except (ImportError, ValueError) as exc:
        raise SuiteOptionError("model.loss", loss_path, _LOSS_FIX, f"cannot be imported ({exc})") from None
    if not callable(loss_fn):
        raise SuiteOptionError("model.loss", loss_path, _LOSS_FIX, "is not callable")
    instance = CUSTOM.make(CUSTOM.workloads[0], batch_size, seed, options)
    module = instance.model
    parameters = trainable(module)
    if not parameters:
        raise SuiteOptionError("model.target", model_options.get("target"),
                               "give a module with parameters that require gradients", "has nothing to train")

    def loss(batch: tuple[Any, ...]) -> Any:
        return loss_fn(module, batch)

    task = TrainTask(
        kind="backprop", modules={"model": module}, parameters=parameters, batch=tuple(instance.inputs), loss=loss,
        optimizer="Adam", lr=1e-3,
        info={**instance.info, "method": "user model", "loss": loss_path, "trained": ["model"], "frozen": [],
              "simplified": []},
        model=module,
    )
    task.info.update(workload=CUSTOM_WORKLOAD, kind="backprop", batch_size=batch_size, seed=seed,
                     **_parameter_counts(task))
    return task
