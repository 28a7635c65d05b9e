"""PaDiM's fit (``kind == "fit"``: its cost is time per training image, see
bench.backends.torch_training.fit_cost), beside the model (padim.py): embed every training image (the
inference model's ``embed``), then per position the mean and the covariance (plus 0.01 I) and its
inverse (by Cholesky: the matrix is symmetric positive definite), written into the inference model's
``mean`` and ``inv_covariance``.

A separate module from the model's so that a change of the fit does not change the model code's
hash (bench.suites.base.code_hash), which keys the inference conversions' caches. torch is
imported only inside functions.
"""

from __future__ import annotations

from typing import Any, Callable

from bench.suites.training import TrainTask, embed_all

__all__ = ["padim_task"]

_CHUNK = 256  # positions whose covariance is inverted at once (310 MB for 550 features)


def padim_task(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch

    from bench.suites.models.padim import COVARIANCE_REGULARISATION

    model.requires_grad_(False)

    def fit(images: Any) -> dict[str, Any]:
        n = int(images.shape[0])
        if n < 2:
            raise ValueError(f"PaDiM's covariance needs at least 2 training images, got {n}")
        with torch.no_grad():
            embedding = torch.cat([e.flatten(2) for e in embed_all(model, images, batch_size)])  # [N, C, P]
            mean = embedding.mean(dim=0)
            centred = embedding - mean
            channels, positions = mean.shape
            model.mean.copy_(mean)
            ridge = COVARIANCE_REGULARISATION * torch.eye(channels, device=mean.device, dtype=mean.dtype)
            for start in range(0, positions, _CHUNK):
                part = centred[:, :, start : start + _CHUNK]
                covariance = torch.einsum("ncp,ndp->pcd", part, part) / (n - 1) + ridge
                # covariance + ridge is symmetric positive definite: its inverse by Cholesky, not LU. LU
                # (torch.linalg.inv) on these ill-conditioned batches left identity errors of 3e-2 where
                # Cholesky leaves 4e-4, and MKL's batched LU fails outright ("Pivots given to lu_solve
                # must all be >= 1") once torch.set_num_threads(n > 1) has been called, as
                # backend.threads does (torch 2.13 CPU, measured on this project's machines).
                factor = torch.linalg.cholesky(covariance)
                model.inv_covariance[start : start + _CHUNK] = torch.cholesky_inverse(factor)
        return {"images": n, "positions": positions, "features": channels,
                "regularisation": COVARIANCE_REGULARISATION}

    return TrainTask(
        kind="fit", modules={"model": model}, parameters=[], batch=(make_images(batch_size),), fit=fit,
        optimizer="none", lr=0.0, make_images=make_images,
        info={"method": "PaDiM", "loss": "none (fit): per-position mean, covariance + 0.01 I, and its inverse (Cholesky)",
              "fits": ["mean", "inv_covariance"], "fit_batch_size": batch_size, "simplified": []},
    )
