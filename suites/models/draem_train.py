"""DRAEM's training step (Zavrtanik et al., ICCV 2021; VitjanZ/DRAEM; anomalib ``draem``), beside the
model (draem.py): both sub-networks trained, Adam lr 1e-4. Loss = L2(reconstruction, clean image)
+ (1 - SSIM) (11x11 Gaussian window, sigma 1.5) + focal loss (gamma 2, no class weights) of the
discriminative logits against the anomaly mask, on images with synthetic anomalies. Facts from the
paper and the reference code, no code copied.

Simplified (also in the task's ``info["simplified"]``): the synthetic anomalies (Perlin-noise
masks, DTD textures blended in) are a cheap seeded approximation (thresholded smooth value noise,
a smooth random colour texture, blend factor in [0, 0.8], half the images left clean), generated
once outside the timed step.

A separate module from the model's so that a change of the loss does not change the model code's
hash (bench.suites.base.code_hash), which keys the inference conversions' caches. torch is
imported only inside functions.
"""

from __future__ import annotations

from typing import Any, Callable

from bench.suites.training import TrainTask, trainable

__all__ = ["ssim", "focal_loss", "synthetic_anomalies", "draem_task"]


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


def _batch(clean: Any, seed: int) -> tuple[Any, Any, Any]:
    """A step's batch from clean images: (with synthetic anomalies, clean, mask)."""
    augmented, mask = synthetic_anomalies(clean, seed)
    return augmented, clean, mask


def draem_task(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
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
        parameters=trainable(reconstructive, discriminative), batch=(augmented, clean, mask), loss=loss,
        optimizer="Adam", lr=1e-4, make_batch=lambda images: _batch(images, seed + 1),
        info={"method": "DRAEM", "loss": "L2 + (1 - SSIM) of the reconstruction against the clean image, + focal "
              "loss (gamma 2) of the segmentation against the anomaly mask",
              "trained": ["reconstructive", "discriminative"], "frozen": [],
              "batch": ["image with synthetic anomalies", "clean image", "anomaly mask"],
              "simplified": ["synthetic anomalies: thresholded smooth noise and a random texture instead of Perlin "
                             "noise and DTD images, generated once outside the timed step"]},
    )
