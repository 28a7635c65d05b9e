"""Training of the suites' workloads, as the worker measures it: the registry.

For each trainable workload, ``training_task`` says what one training step (the backprop methods) or
one fit (the methods that fit statistics without backprop) does. It dispatches on the workload's
suite (``TRAINING``: suite -> workload -> kind; workload names are unique across suites) and builds
the model exactly as the inference side does (the suite's adapted workload, ``Workload.build(seed)``),
so the modules trained are the modules measured at inference; the inference wrappers
(normalisation, maps, scores) are taken apart into the parts each method trains and the parts it
keeps frozen, as the methods' reference implementations do.

Each method's task (its loss, trained parts and optimizer, or its fit; facts from the papers and
the reference code read for them, no code copied) lives beside its model, in a ``*_train.py`` module
(``_METHODS`` below names them):

* anomaly (suites/models/<method>_train.py): EfficientAD-S/-M, FastFlow, STFPM, Reverse
  Distillation, DRAEM and the autoencoder train by backprop; PatchCore and PaDiM fit (``kind ==
  "fit"``; their cost is time per training image, see bench.backends.torch_training.fit_cost);
* timeseries (suites/models/timeseries/<model>_train.py, forecast_train.py): LSTM-ED's
  reconstruction, USAD's two adversarial phases, TranAD's two self-conditioned phases, the TCN's
  next-sample prediction, PatchTST's and DLinear's forecast over the horizon, on the suite's
  generated (or the user's) series, normalised windows as at the model boundary;
* vision (suites/models/vision/classifier_train.py): the five classifiers fine-tuned whole with
  cross-entropy on seeded labels; the detector (yolox_s) does not train here (``NOT_TRAINABLE``).

A backend that can train turns a task into a session (bench.backends.base.Backend.prepare_training).
Training is measured at the model boundary only (``suite.boundary=pipeline`` is refused).

What is simplified for every method, beside each method's own simplifications (its module
docstring, and the task's ``info["simplified"]``):

* training data are seeded synthetic inputs of the model's input (for the time series, windows of
  the user's file when ``data.path`` is set), fixed for the whole run (one batch, reused every
  step): speed does not depend on the values;
* no learning-rate schedules (they cost nothing per step).

A model the user brings (``suite=custom``, workload ``custom``): ``model.target`` builds the module
(as for inference) and ``model.loss=pkg.mod:loss_fn`` gives ``loss_fn(model, inputs) -> scalar
tensor``, ``inputs`` the tuple of input tensors (one tensor of ``model.input_shape`` per sample);
Adam, lr 1e-3.

torch is imported only inside functions: ``TRAINING``, ``TRAINABLE`` and ``check_trainable`` can be
used without it (config validation).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Optional

from bench.suites.base import SuiteOptionError, Workload, resolve

__all__ = ["TRAINING", "TRAINABLE", "NOT_TRAINABLE", "CUSTOM_WORKLOAD", "TrainTask", "training_task",
           "check_trainable", "freeze", "trainable", "embed_all"]

_B, _F = "backprop", "fit"
# Suite -> workload -> how it trains: "backprop" (timed steps of a loss) or "fit" (a timed fit of
# statistics, no backprop). Workloads a trainable suite holds but that do not train are in NOT_TRAINABLE.
TRAINING: dict[str, dict[str, str]] = {
    "anomaly": {
        "efficientad_s": _B, "efficientad_m": _B, "patchcore": _F, "padim_resnet18": _F, "padim_wrn50": _F,
        "fastflow": _B, "stfpm": _B, "reverse_distillation": _B, "draem": _B, "autoencoder": _B,
    },
    "timeseries": {"lstm_ae": _B, "usad": _B, "tranad": _B, "tcn": _B, "patchtst": _B, "dlinear": _B},
    "vision": {"resnet50": _B, "mobilenetv3_large": _B, "efficientnet_b0": _B, "vit_b16": _B, "convnext_tiny": _B},
}
# Suite -> workload -> why it does not train here (the problem of its one-line refusal).
NOT_TRAINABLE: dict[str, dict[str, str]] = {
    "vision": {"yolox_s": "is not trainable (a detector: its training, label assignment and box losses, is not "
                          "built here)"},
}
# Workload -> kind, every suite's: names are unique across suites, so a workload names its task.
TRAINABLE: dict[str, str] = {name: kind for kinds in TRAINING.values() for name, kind in kinds.items()}
assert len(TRAINABLE) == sum(len(kinds) for kinds in TRAINING.values()), "a workload name is in two suites"
_SUITE_OF: dict[str, str] = {name: suite for suite, kinds in TRAINING.items() for name in kinds}
_CATALOGS: dict[str, str] = {"anomaly": "bench.suites.anomaly:SUITE", "timeseries": "bench.suites.timeseries:SUITE",
                             "vision": "bench.suites.vision:SUITE"}
assert set(_CATALOGS) == set(TRAINING)
# The custom suite's one workload: a backprop task from model.target and model.loss.
CUSTOM_WORKLOAD = "custom"

# Each workload's task maker, beside its model. Anomaly and vision: ``(model, make_images, batch_size,
# seed) -> TrainTask``; timeseries: ``(model, make_windows, batch_size, seed) -> TrainTask`` (see
# ``_timeseries_task``).
_TS, _VISION = "bench.suites.models.timeseries", "bench.suites.models.vision.classifier_train"
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
    "lstm_ae": f"{_TS}.lstm_ae_train:lstm_ae_task",
    "usad": f"{_TS}.usad_train:usad_task",
    "tranad": f"{_TS}.tranad_train:tranad_task",
    "tcn": f"{_TS}.tcn_train:tcn_task",
    "patchtst": f"{_TS}.forecast_train:patchtst_task",
    "dlinear": f"{_TS}.forecast_train:dlinear_task",
    "resnet50": f"{_VISION}:sgd_finetune_task",
    "mobilenetv3_large": f"{_VISION}:sgd_finetune_task",
    "efficientnet_b0": f"{_VISION}:sgd_finetune_task",
    "vit_b16": f"{_VISION}:vit_finetune_task",
    "convnext_tiny": f"{_VISION}:adamw_finetune_task",
}
assert set(_METHODS) == set(TRAINABLE)


@dataclass
class TrainTask:
    """What one training step, or one fit, of a workload does. See the module docstring."""

    kind: str  # "backprop" or "fit"
    modules: dict[str, Any]  # every module the step touches, frozen ones included (for .to(device))
    parameters: list[Any]  # what the optimizer updates (empty for fit)
    batch: tuple[Any, ...]  # fixed, seeded training data of batch_size samples (host; fp32, class labels int64)
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

    ``options`` are the suite options the inference side gets; the suite is the one that holds
    ``workload`` (``TRAINING``). Training is measured at the model boundary only (preprocessed
    tensors in). Anomaly: ``options["input_size"]``, when set, builds the model for a smaller square
    input than the workload's (the tests' small models; a model that cannot take it is refused).
    Timeseries: ``suite.dataset`` and ``data.path`` set the channels and windows, as for inference.
    ``workload == "custom"`` reads ``options["model"]``: ``target``, ``input_shape`` (as for inference)
    and ``loss``.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    options = dict(options or {})
    if workload == CUSTOM_WORKLOAD:
        return _custom_task(int(batch_size), seed, options)
    if workload not in TRAINABLE:
        raise _refusal(workload)
    suite = resolve(_CATALOGS[_SUITE_OF[workload]])
    suite.check(options)
    _check_boundary(options)
    make = {"anomaly": _anomaly_task, "timeseries": _timeseries_task, "vision": _vision_task}[suite.name]
    task, spec = make(suite, workload, int(batch_size), seed, options)
    task.info.update(workload=workload, suite=suite.name, kind=task.kind, input_shape=list(spec.input_shape),
                     batch_size=int(batch_size), seed=seed, **_parameter_counts(task))
    return task


def check_trainable(suite: str, workloads: Iterable[str], options: Optional[dict[str, Any]] = None) -> None:
    """Refuse in one line (SuiteOptionError) a suite without training tasks, a workload of ``suite``
    that does not train, or suite options training does not measure (a boundary other than the
    model's): what config validation asks before scenario=training runs anything."""
    if suite != "custom":
        if suite not in TRAINING:
            raise SuiteOptionError("suite", suite, f"use suite={', suite='.join(TRAINING)}, or suite=custom with "
                                   "model.target and model.loss", "has no training tasks")
        for name in workloads:
            if name not in TRAINING[suite]:
                raise _refusal(name)
    _check_boundary(options or {})


def _check_boundary(options: dict[str, Any]) -> None:
    boundary = options.get("boundary") or "model"
    if boundary != "model":
        raise SuiteOptionError("suite.boundary", boundary,
                               "use suite.boundary=model (a training step takes preprocessed tensors)",
                               "is not measured in training")


def _refusal(workload: str) -> SuiteOptionError:
    for suite, reasons in NOT_TRAINABLE.items():
        if workload in reasons:
            return SuiteOptionError("suite.only", workload, f"choose among {', '.join(TRAINING[suite])}",
                                    reasons[workload])
    choices = "; ".join(f"{suite}: {', '.join(kinds)}" for suite, kinds in TRAINING.items())
    return SuiteOptionError("suite.only", workload, f"choose a trainable workload ({choices}), or suite=custom with "
                            "model.target and model.loss", "is not a trainable workload")


# --- each suite's tasks -------------------------------------------------------------------------


def _anomaly_task(suite: Any, workload: str, batch_size: int, seed: int,
                  options: dict[str, Any]) -> tuple[TrainTask, Workload]:
    spec = suite.get(workload)
    size = int(options.get("input_size") or spec.input_shape[-1])
    model = _build(spec, size, seed)
    spec = replace(spec, input_shape=(spec.input_shape[0], size, size))
    return _image_task(spec, model, workload, batch_size, seed), spec


def _timeseries_task(suite: Any, workload: str, batch_size: int, seed: int,
                     options: dict[str, Any]) -> tuple[TrainTask, Workload]:
    """The model as the inference side builds it for these options (channels and window follow the
    data set or the user's file), and ``make_windows(n, extra=0, offset=0)``: ``n`` normalised windows
    of ``window + extra`` samples (a forecasting model's look-back and the horizon after it), cut from
    the suite's generated series (or the user's file) at seeded offsets, with the per-channel mean and
    standard deviation fitted on that series. With ``extra == offset == 0`` they are the inference
    side's inputs at the model boundary (bench.suites.timeseries.instantiate)."""
    import torch

    from bench.suites.series import cut_windows, fit_normalisation, read_series, synthetic_series
    from bench.suites.timeseries import DEFAULT_DATASET

    spec = suite.adapted(suite.get(workload), options)
    window, channels = spec.input_shape
    model = spec.build(seed)
    data_path = options.get("data_path") or None

    def make_windows(n: int, extra: int = 0, offset: int = 0) -> Any:
        length = window + extra
        if data_path:
            values = read_series(data_path)
            if values.shape[0] < length + 1:
                raise SuiteOptionError("data.path", data_path, f"give at least {length + 1} rows (the window, "
                                       f"{extra} samples after it and one more) to train {workload}",
                                       f"has {values.shape[0]} rows")
        else:
            values = synthetic_series(length + 1 + max(2048, n), channels, seed + offset)
        mean, std = fit_normalisation(values)
        windows, _ = cut_windows(values, n, length, seed + offset)
        return torch.from_numpy((windows - mean) / std)

    task = resolve(_METHODS[workload])(model, make_windows, batch_size, seed)
    task.model = model
    task.info.update(window=window, channels=channels,
                     data=data_path or f"generated, shaped as {options.get('dataset') or DEFAULT_DATASET}")
    return task, spec


def _vision_task(suite: Any, workload: str, batch_size: int, seed: int,
                 options: dict[str, Any]) -> tuple[TrainTask, Workload]:
    spec = suite.adapted(suite.get(workload), options)
    model = spec.build(seed)
    return _image_task(spec, model, workload, batch_size, seed), spec


def _image_task(spec: Workload, model: Any, workload: str, batch_size: int, seed: int) -> TrainTask:
    """The method's task on ``model``, its images drawn as ``spec`` draws the measured inputs (seeded)."""
    def make_images(n: int, offset: int = 0) -> Any:
        return spec.make_inputs(n, seed + offset)[0]

    task = resolve(_METHODS[workload])(model, make_images, batch_size, seed)
    task.model = model
    task.info["input_norm"] = spec.input_norm
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
