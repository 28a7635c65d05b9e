"""Training of the anomaly suite's methods, as the worker measures it.

For each workload, ``training_task`` says what one training step (the backprop methods) or one fit
(the methods that fit statistics without backprop) does. It is built from the same builders the
inference side uses, so the modules trained are the modules measured at inference; the inference
wrappers (normalisation, maps, scores) are taken apart into the parts each method trains and the
parts it keeps frozen, as the methods' reference implementations do.

Backprop methods (loss, trained parts, optimizer; facts from the papers and the reference code read
for them, no code copied):

* EfficientAD-S/-M (Batzner et al., WACV 2024; anomalib ``efficient_ad``): teacher frozen, student
  and autoencoder trained, Adam lr 1e-4, weight decay 1e-5. Loss = hard-feature loss of the student
  (mean of the squared student-teacher differences at or above their 0.999 quantile, on the
  normalised teacher features) + ImageNet penalty (mean squared student output, first half of the
  channels, on an ImageNet image) + autoencoder loss (mean squared AE-teacher difference on a
  colour-jittered image) + student-AE loss (mean squared difference of the AE output and the
  student's second half of channels, same image);
* FastFlow (Yu et al. 2021; anomalib ``fastflow``): backbone frozen, LayerNorms and flows trained,
  Adam lr 1e-3, weight decay 1e-5. Loss = per scale, the batch mean of
  ``0.5 * sum(z^2) - log|det J|`` (sums over channels and positions per image), summed over scales;
* STFPM (Wang et al., BMVC 2021; anomalib ``stfpm``): teacher frozen, student trained, SGD lr 0.4,
  momentum 0.9, weight decay 1e-3. Loss = per level ``0.5 / (h * w) * sum ||t_hat - s_hat||^2``
  (channel-L2-normalised features, summed over batch, channels and positions), summed over levels;
* Reverse Distillation (Deng & Li, CVPR 2022; hq-deng/RD4AD; anomalib): encoder frozen, OCBE and
  decoder trained, Adam lr 0.005, betas (0.5, 0.999) (the authors'; anomalib has 0.99). Loss = per
  level the batch mean of ``1 - cos(encoder, decoder)`` with each image's feature map flattened
  into one vector (as both references compute it), summed over levels;
* DRAEM (Zavrtanik et al., ICCV 2021; VitjanZ/DRAEM; anomalib ``draem``): both sub-networks
  trained, Adam lr 1e-4. Loss = L2(reconstruction, clean image) + (1 - SSIM) (11x11 Gaussian
  window, sigma 1.5) + focal loss (gamma 2, no class weights) of the discriminative logits against
  the anomaly mask, on images with synthetic anomalies;
* autoencoder (this project's baseline): trained whole, Adam lr 1e-3, L2 reconstruction loss.

Fit methods (``kind == "fit"``; their cost is time per training image, see bench.measurement.training.fit_cost):

* PatchCore: embed every training image (the inference model's ``embed``: WRN-50-2 layer2+3, 3x3
  averaging, 1536 features per patch), then greedy k-center coreset selection down to the model's
  ``CORESET_SAMPLING_RATIO`` of the patches, on a random projection of the features to 128
  dimensions (the authors' approximate greedy coreset; anomalib projects sparsely to a
  Johnson-Lindenstrauss size). The coreset becomes the inference model's memory bank;
* PaDiM: embed every training image (the inference model's ``embed``), then per position the mean
  and the covariance (plus 0.01 I) and its inverse, written into the inference model's ``mean``
  and ``inv_covariance``.

What is simplified, each also listed in the task's ``info["simplified"]``:

* training data are seeded synthetic images of the model's input, fixed for the whole run (one
  batch, reused every step): speed does not depend on the pixel values;
* EfficientAD: the ImageNet penalty's image is a seeded random image (a stand-in for ImageNette),
  not a real one; the colour jitter (brightness, contrast or saturation by a factor in
  [0.8, 1.2], as the references draw it) is applied once, outside the timed step; the 0.999
  quantile is taken exactly with ``topk`` instead of ``torch.quantile`` (same value, no 16M-element
  limit, no host synchronisation from boolean indexing);
* DRAEM: the synthetic anomalies (Perlin-noise masks, DTD textures blended in) are a cheap seeded
  approximation (thresholded smooth value noise, a smooth random colour texture, blend factor in
  [0, 0.8], half the images left clean), generated once outside the timed step;
* PatchCore: the greedy selection starts from one random patch (anomalib), not from the authors'
  averaged distances to ten random patches;
* no learning-rate schedules (they cost nothing per step).

A model the user brings (``suite=custom``, workload ``custom``): ``model.target`` builds the module
(as for inference) and ``model.loss=pkg.mod:loss_fn`` gives ``loss_fn(model, inputs) -> scalar
tensor``, ``inputs`` the tuple of input tensors (one tensor of ``model.input_shape`` per sample);
Adam, lr 1e-3.

torch is imported only inside functions: ``TRAINABLE`` can be read without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

from bench.suites.base import SuiteOptionError, Workload, resolve

__all__ = [
    "TRAINABLE",
    "CUSTOM_WORKLOAD",
    "TrainTask",
    "training_task",
    "ssim",
    "focal_loss",
    "hard_mean",
    "colour_jitter",
    "synthetic_anomalies",
    "random_projection",
    "greedy_coreset",
]

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

EFFICIENTAD_HARD_QUANTILE = 0.999
PATCHCORE_PROJECTION_DIM = 128
_PADIM_CHUNK = 256  # positions whose covariance is inverted at once (310 MB for 550 features)


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

    task = _METHODS[workload](model, make_images, int(batch_size), seed)
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


def _freeze(*modules: Any) -> None:
    for module in modules:
        module.requires_grad_(False)


def _trainable(*modules: Any) -> list[Any]:
    params: list[Any] = []
    seen: set[int] = set()
    for module in modules:
        for p in module.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    return params


# --- EfficientAD --------------------------------------------------------------------------------


def hard_mean(distance: Any, quantile: float = EFFICIENTAD_HARD_QUANTILE) -> Any:
    """Mean of the elements at or above the ``quantile`` of ``distance`` (EfficientAD's hard
    feature mining), via ``topk``: with linear interpolation the quantile lies between sorted
    elements ``floor(q (n - 1))`` and ``ceil(q (n - 1))``, so the elements at or above it are the
    ``n - ceil(q (n - 1))`` largest (ties at the quantile aside). Equal to the references'
    ``mean(d[d >= quantile(d, q)])`` without torch.quantile's 16M-element limit and without the
    host synchronisation that boolean indexing costs on a GPU."""
    flat = distance.reshape(-1)
    n = flat.numel()
    k = n - math.ceil(quantile * (n - 1))
    return flat.topk(k, sorted=False).values.mean()


def colour_jitter(images: Any, seed: int, low: float = 0.8, high: float = 1.2) -> Any:
    """EfficientAD's augmentation of the autoencoder's image: per image, one of brightness,
    contrast or saturation adjusted by a factor drawn from U(low, high) (torchvision's
    definitions: blend with black, with the mean grey level, with the grey image), clamped to
    [0, 1]."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    out = images.clone()
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    for i in range(images.shape[0]):
        image = images[i : i + 1]
        choice = int(torch.randint(3, (1,), generator=generator))
        factor = float(torch.empty(1).uniform_(low, high, generator=generator))
        grey = (image * weights).sum(dim=1, keepdim=True)
        if choice == 0:
            other = torch.zeros_like(image)
        elif choice == 1:
            other = grey.mean().expand_as(image)
        else:
            other = grey.expand_as(image)
        out[i : i + 1] = (factor * image + (1.0 - factor) * other).clamp(0.0, 1.0)
    return out


def _efficientad(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch

    teacher, student, ae = model.teacher, model.student, model.ae
    _freeze(teacher)
    # The normalisation the inference model applies: ImageNet mean/std on the input, and the
    # teacher's per-channel feature statistics (fitted on the training images before training).
    stats = torch.nn.Module()
    for name in ("input_mean", "input_std", "teacher_mean", "teacher_std"):
        stats.register_buffer(name, getattr(model, name).detach().clone())
    c = model.out_channels
    image = make_images(batch_size)
    batch = (image, colour_jitter(image, seed + 1), make_images(batch_size, 2))

    def loss(batch: tuple[Any, ...]) -> Any:
        image, image_ae, image_penalty = (
            (x - stats.input_mean) / stats.input_std for x in batch
        )
        with torch.no_grad():
            t = (teacher(image) - stats.teacher_mean) / stats.teacher_std
            t_ae = (teacher(image_ae) - stats.teacher_mean) / stats.teacher_std
        distance_st = (t.float() - student(image)[:, :c].float()) ** 2
        loss_hard = hard_mean(distance_st)
        loss_penalty = (student(image_penalty)[:, :c].float() ** 2).mean()
        ae_out = ae(image_ae).float()
        student_ae = student(image_ae)[:, c:].float()
        loss_ae = ((t_ae.float() - ae_out) ** 2).mean()
        loss_stae = ((ae_out - student_ae) ** 2).mean()
        return loss_hard + loss_penalty + loss_ae + loss_stae

    return TrainTask(
        kind="backprop", modules={"teacher": teacher, "student": student, "autoencoder": ae, "normalisation": stats},
        parameters=_trainable(student, ae), batch=batch, loss=loss, optimizer="Adam", lr=1e-4,
        optimizer_options={"weight_decay": 1e-5},
        info={"method": f"EfficientAD-{model.model_size.upper()}",
              "loss": "hard student-teacher (0.999 quantile) + ImageNet penalty + autoencoder-teacher + "
                      "student-autoencoder, mean squared distances",
              "trained": ["student", "autoencoder"], "frozen": ["teacher"],
              "batch": ["image", "colour-jittered image (autoencoder)", "ImageNet stand-in (penalty)"],
              "simplified": ["penalty image is a seeded random stand-in for ImageNette",
                             "colour jitter applied once, outside the timed step",
                             "0.999 quantile via topk (exact, no host sync)"]},
    )


# --- FastFlow, STFPM, Reverse Distillation ------------------------------------------------------


def _fastflow(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch

    extractor, norms, flows = model.feature_extractor, model.norms, model.flows
    _freeze(extractor)

    def loss(batch: tuple[Any, ...]) -> Any:
        (x,) = batch
        with torch.no_grad():
            features = extractor(x)
        total = 0.0
        for f, norm, flow in zip(features, norms, flows):
            z, log_det = flow.forward_and_log_det(norm(f))
            total = total + (0.5 * z.float().pow(2).sum(dim=(1, 2, 3)) - log_det.float()).mean()
        return total

    return TrainTask(
        kind="backprop", modules={"feature_extractor": extractor, "norms": norms, "flows": flows},
        parameters=_trainable(norms, flows), batch=(make_images(batch_size),), loss=loss, optimizer="Adam",
        lr=1e-3, optimizer_options={"weight_decay": 1e-5},
        info={"method": "FastFlow", "loss": "negative log-likelihood: batch mean of 0.5 * sum(z^2) - log|det J| "
              "per image, summed over the three scales (anomalib's FastflowLoss)",
              "trained": ["norms", "flows"], "frozen": ["feature_extractor"], "simplified": []},
    )


def _stfpm(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch
    import torch.nn.functional as F

    teacher, student = model.teacher, model.student
    _freeze(teacher)

    def loss(batch: tuple[Any, ...]) -> Any:
        (x,) = batch
        with torch.no_grad():
            targets = teacher(x)
        total = 0.0
        for t, s in zip(targets, student(x)):
            h, w = t.shape[-2:]
            diff = F.normalize(t.float(), dim=1) - F.normalize(s.float(), dim=1)
            total = total + (0.5 / (h * w)) * diff.pow(2).sum()
        return total

    return TrainTask(
        kind="backprop", modules={"teacher": teacher, "student": student}, parameters=_trainable(student),
        batch=(make_images(batch_size),), loss=loss, optimizer="SGD", lr=0.4,
        optimizer_options={"momentum": 0.9, "dampening": 0.0, "weight_decay": 1e-3},
        info={"method": "STFPM", "loss": "sum over levels of 0.5 / (h w) * squared distance of channel-L2-normalised "
              "teacher and student features, summed over batch, channels and positions (anomalib's STFPMLoss)",
              "trained": ["student"], "frozen": ["teacher"], "simplified": []},
    )


def _reverse_distillation(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch
    import torch.nn.functional as F

    encoder, bottleneck, decoder = model.encoder, model.bottleneck, model.decoder
    _freeze(encoder)

    def loss(batch: tuple[Any, ...]) -> Any:
        (x,) = batch
        with torch.no_grad():
            encoded = list(encoder(x))
        total = 0.0
        for e, d in zip(encoded, decoder(bottleneck(encoded))):
            cosine = F.cosine_similarity(e.flatten(1).float(), d.flatten(1).float(), dim=1)
            total = total + (1.0 - cosine).mean()
        return total

    return TrainTask(
        kind="backprop", modules={"encoder": encoder, "bottleneck": bottleneck, "decoder": decoder},
        parameters=_trainable(bottleneck, decoder), batch=(make_images(batch_size),), loss=loss,
        optimizer="Adam", lr=0.005, optimizer_options={"betas": (0.5, 0.999)},
        info={"method": "Reverse Distillation", "loss": "sum over levels of the batch mean of 1 - cosine similarity "
              "of each image's flattened encoder and decoder features (RD4AD, anomalib)",
              "trained": ["bottleneck", "decoder"], "frozen": ["encoder"], "simplified": []},
    )


# --- DRAEM and the autoencoder ------------------------------------------------------------------


def ssim(x: Any, y: Any, window: int = 11, sigma: float = 1.5, data_range: float = 1.0) -> Any:
    """Mean structural similarity of two image batches (Wang et al. 2004) with a Gaussian window
    (11 taps, sigma 1.5, zero padding, per channel), as the DRAEM authors' loss computes it.
    Always in fp32, outside autocast: the variances are differences of nearly equal terms."""
    import torch
    import torch.nn.functional as F

    with torch.autocast(x.device.type, enabled=False):
        x, y = x.float(), y.float()
        channels = x.shape[1]
        taps = torch.arange(window, dtype=torch.float32, device=x.device) - window // 2
        g = torch.exp(-(taps**2) / (2.0 * sigma**2))
        g = g / g.sum()
        kernel = (g[:, None] * g[None, :]).expand(channels, 1, window, window).contiguous()

        def blur(t: Any) -> Any:
            return F.conv2d(t, kernel, padding=window // 2, groups=channels)

        mu_x, mu_y = blur(x), blur(y)
        var_x = blur(x * x) - mu_x * mu_x
        var_y = blur(y * y) - mu_y * mu_y
        cov = blur(x * y) - mu_x * mu_y
        c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
        return value.mean()


def focal_loss(logits: Any, mask: Any, gamma: float = 2.0) -> Any:
    """Focal loss (Lin et al. 2017) of two-class logits ``[B, 2, H, W]`` against a 0/1 mask
    ``[B, 1, H, W]``: mean over pixels of ``-(1 - p_t)^gamma log p_t``, no class weights (DRAEM:
    the authors' FocalLoss with alpha None, anomalib's kornia FocalLoss with alpha 1)."""
    import torch.nn.functional as F

    log_p = F.log_softmax(logits.float(), dim=1)
    log_pt = log_p.gather(1, mask.long())
    return (-((1.0 - log_pt.exp()) ** gamma) * log_pt).mean()


def synthetic_anomalies(images: Any, seed: int, p_anomaly: float = 0.5, threshold: float = 0.5,
                        beta_max: float = 0.8) -> tuple[Any, Any]:
    """DRAEM's training input, approximated cheaply and seeded: per image, with probability
    ``p_anomaly``, a mask from smooth noise (a random grid of 2^a x 2^b cells, a, b in 0..5, as the
    authors draw the Perlin scales, bicubically upsampled) above ``threshold``, filled with a smooth
    random colour texture (stand-in for a DTD image) blended as ``(1 - beta) * texture + beta *
    image``, beta from U(0, beta_max). Returns (augmented images, masks [B, 1, H, W])."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    n, c, h, w = images.shape
    augmented, masks = images.clone(), torch.zeros(n, 1, h, w)
    for i in range(n):
        if float(torch.rand(1, generator=generator)) >= p_anomaly:
            continue
        cells = [2 ** int(torch.randint(0, 6, (1,), generator=generator)) for _ in range(2)]
        noise = torch.rand(1, 1, cells[0] + 1, cells[1] + 1, generator=generator) * 2.0 - 1.0
        noise = F.interpolate(noise, size=(h, w), mode="bicubic", align_corners=True)
        mask = (noise > threshold).float()[0]
        coarse = F.interpolate(torch.rand(1, c, 9, 9, generator=generator), size=(h, w), mode="bilinear",
                               align_corners=False)
        texture = (coarse + 0.2 * torch.rand(1, c, h, w, generator=generator)).clamp(0.0, 1.0)[0]
        beta = float(torch.rand(1, generator=generator)) * beta_max
        blended = (1.0 - beta) * texture + beta * images[i]
        augmented[i] = images[i] * (1.0 - mask) + blended * mask
        masks[i] = mask
    return augmented, masks


def _draem(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch
    import torch.nn.functional as F

    reconstructive, discriminative = model.reconstructive, model.discriminative
    clean = make_images(batch_size)
    augmented, mask = synthetic_anomalies(clean, seed + 1)

    def loss(batch: tuple[Any, ...]) -> Any:
        augmented, clean, mask = batch
        reconstruction = reconstructive(augmented)
        # (image, reconstruction): the inference model's (anomalib's) order.
        logits = discriminative(torch.cat((augmented, reconstruction), dim=1))
        reconstruction = reconstruction.float()
        return (F.mse_loss(reconstruction, clean) + (1.0 - ssim(reconstruction, clean))
                + focal_loss(logits, mask))

    return TrainTask(
        kind="backprop", modules={"reconstructive": reconstructive, "discriminative": discriminative},
        parameters=_trainable(reconstructive, discriminative), batch=(augmented, clean, mask), loss=loss,
        optimizer="Adam", lr=1e-4,
        info={"method": "DRAEM", "loss": "L2 + (1 - SSIM) of the reconstruction against the clean image, + focal "
              "loss (gamma 2) of the segmentation against the anomaly mask",
              "trained": ["reconstructive", "discriminative"], "frozen": [],
              "batch": ["image with synthetic anomalies", "clean image", "anomaly mask"],
              "simplified": ["synthetic anomalies: thresholded smooth noise and a random texture instead of Perlin "
                             "noise and DTD images, generated once outside the timed step"]},
    )


def _autoencoder(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch.nn.functional as F

    def loss(batch: tuple[Any, ...]) -> Any:
        (x,) = batch
        return F.mse_loss(model.reconstruct(x).float(), x)

    return TrainTask(
        kind="backprop", modules={"autoencoder": model}, parameters=_trainable(model),
        batch=(make_images(batch_size),), loss=loss, optimizer="Adam", lr=1e-3,
        info={"method": "convolutional autoencoder", "loss": "L2 (mean squared) reconstruction error",
              "trained": ["autoencoder"], "frozen": [], "simplified": []},
    )


# --- PatchCore and PaDiM: fits ------------------------------------------------------------------


def random_projection(embedding: Any, dim: int, seed: int) -> Any:
    """``embedding [n, d]`` projected on ``dim`` seeded Gaussian directions (scaled by
    1/sqrt(dim), so distances keep their scale); unchanged when ``d <= dim``."""
    import torch

    d = embedding.shape[1]
    if d <= dim:
        return embedding
    generator = torch.Generator(device=embedding.device).manual_seed(seed)
    matrix = torch.randn(d, dim, generator=generator, device=embedding.device, dtype=embedding.dtype)
    return embedding @ (matrix / math.sqrt(dim))


def greedy_coreset(features: Any, k: int, seed: int) -> Any:
    """Indices of ``k`` rows of ``features [n, d]`` chosen by greedy k-center selection: start at a
    seeded random row, then repeatedly take the row farthest from every row chosen so far. No host
    synchronisation inside the loop (the next index stays a device tensor)."""
    import torch

    n = features.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"a coreset of {k} rows cannot be chosen from {n}")
    device = features.device
    generator = torch.Generator(device=device).manual_seed(seed)
    index = torch.randint(n, (1,), generator=generator, device=device)
    selected = torch.empty(k, dtype=torch.long, device=device)
    nearest = torch.full((n,), math.inf, dtype=features.dtype, device=device)
    for i in range(k):
        selected[i : i + 1] = index
        distance = (features - features.index_select(0, index)).pow(2).sum(dim=1)
        torch.minimum(nearest, distance, out=nearest)
        index = nearest.argmax().view(1)
    return selected


def _embed_all(model: Any, images: Any, batch_size: int) -> Any:
    device = next(model.parameters()).device
    return [model.embed(chunk.to(device)) for chunk in images.split(batch_size)]


def _patchcore(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch

    from bench.suites.models.patchcore import CORESET_SAMPLING_RATIO

    model.requires_grad_(False)

    def fit(images: Any) -> dict[str, Any]:
        with torch.no_grad():
            embedding = torch.cat([e.flatten(2).transpose(1, 2).reshape(-1, e.shape[1])
                                   for e in _embed_all(model, images, batch_size)])
            n, dim = embedding.shape
            k = max(1, int(n * CORESET_SAMPLING_RATIO))
            projected = random_projection(embedding, PATCHCORE_PROJECTION_DIM, seed)
            bank = embedding.index_select(0, greedy_coreset(projected, k, seed))
        model.memory_bank = bank  # a registered buffer: replaced, shape and all
        model.memory_bank_size = k
        return {"images": int(images.shape[0]), "patches": n, "coreset_rows": k,
                "coreset_ratio": CORESET_SAMPLING_RATIO, "embedding_dim": dim,
                "projection_dim": min(dim, PATCHCORE_PROJECTION_DIM)}

    return TrainTask(
        kind="fit", modules={"model": model}, parameters=[], batch=(make_images(batch_size),), fit=fit,
        optimizer="none", lr=0.0, make_images=make_images,
        info={"method": "PatchCore", "loss": "none (fit): patch embedding, greedy k-center coreset on a 128-d "
              "random projection", "fits": ["memory_bank"], "fit_batch_size": batch_size,
              "simplified": ["greedy selection starts from one random patch (anomalib), not the authors' ten"]},
    )


def _padim(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch

    from bench.suites.models.padim import COVARIANCE_REGULARISATION

    model.requires_grad_(False)

    def fit(images: Any) -> dict[str, Any]:
        n = int(images.shape[0])
        if n < 2:
            raise ValueError(f"PaDiM's covariance needs at least 2 training images, got {n}")
        with torch.no_grad():
            embedding = torch.cat([e.flatten(2) for e in _embed_all(model, images, batch_size)])  # [N, C, P]
            mean = embedding.mean(dim=0)
            centred = embedding - mean
            channels, positions = mean.shape
            model.mean.copy_(mean)
            ridge = COVARIANCE_REGULARISATION * torch.eye(channels, device=mean.device, dtype=mean.dtype)
            for start in range(0, positions, _PADIM_CHUNK):
                part = centred[:, :, start : start + _PADIM_CHUNK]
                covariance = torch.einsum("ncp,ndp->pcd", part, part) / (n - 1) + ridge
                model.inv_covariance[start : start + _PADIM_CHUNK] = torch.linalg.inv(covariance)
        return {"images": n, "positions": positions, "features": channels,
                "regularisation": COVARIANCE_REGULARISATION}

    return TrainTask(
        kind="fit", modules={"model": model}, parameters=[], batch=(make_images(batch_size),), fit=fit,
        optimizer="none", lr=0.0, make_images=make_images,
        info={"method": "PaDiM", "loss": "none (fit): per-position mean, covariance + 0.01 I, and its inverse",
              "fits": ["mean", "inv_covariance"], "fit_batch_size": batch_size, "simplified": []},
    )


_METHODS: dict[str, Callable[[Any, Callable[..., Any], int, int], TrainTask]] = {
    "efficientad_s": _efficientad,
    "efficientad_m": _efficientad,
    "patchcore": _patchcore,
    "padim_resnet18": _padim,
    "padim_wrn50": _padim,
    "fastflow": _fastflow,
    "stfpm": _stfpm,
    "reverse_distillation": _reverse_distillation,
    "draem": _draem,
    "autoencoder": _autoencoder,
}
assert set(_METHODS) == set(TRAINABLE)


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
    parameters = _trainable(module)
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
    )
    task.info.update(workload=CUSTOM_WORKLOAD, kind="backprop", batch_size=batch_size, seed=seed,
                     **_parameter_counts(task))
    return task
