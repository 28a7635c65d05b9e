"""PatchCore's fit (``kind == "fit"``: its cost is time per training image, see
bench.backends.torch_training.fit_cost), beside the model (patchcore.py): embed every training image
(the inference model's ``embed``: WRN-50-2 layer2+3, 3x3 averaging, 1536 features per patch), then
greedy k-center coreset selection down to the model's ``CORESET_SAMPLING_RATIO`` of the patches, on
a random projection of the features to 128 dimensions (the authors' approximate greedy coreset;
anomalib projects sparsely to a Johnson-Lindenstrauss size). The coreset becomes the inference
model's memory bank.

Simplified (also in the task's ``info["simplified"]``): the greedy selection starts from one
random patch (anomalib), not from the authors' averaged distances to ten random patches.

A separate module from the model's so that a change of the fit does not change the model code's
hash (bench.suites.base.code_hash), which keys the inference conversions' caches. torch is
imported only inside functions.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from bench.suites.training import TrainTask, embed_all

__all__ = ["PROJECTION_DIM", "random_projection", "greedy_coreset", "patchcore_task"]

PROJECTION_DIM = 128


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


def patchcore_task(model: Any, make_images: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    import torch

    from bench.suites.models.patchcore import CORESET_SAMPLING_RATIO

    model.requires_grad_(False)

    def fit(images: Any) -> dict[str, Any]:
        with torch.no_grad():
            embedding = torch.cat([e.flatten(2).transpose(1, 2).reshape(-1, e.shape[1])
                                   for e in embed_all(model, images, batch_size)])
            n, dim = embedding.shape
            k = max(1, int(n * CORESET_SAMPLING_RATIO))
            projected = random_projection(embedding, PROJECTION_DIM, seed)
            bank = embedding.index_select(0, greedy_coreset(projected, k, seed))
        model.memory_bank = bank  # a registered buffer: replaced, shape and all
        model.memory_bank_size = k
        return {"images": int(images.shape[0]), "patches": n, "coreset_rows": k,
                "coreset_ratio": CORESET_SAMPLING_RATIO, "embedding_dim": dim,
                "projection_dim": min(dim, PROJECTION_DIM)}

    return TrainTask(
        kind="fit", modules={"model": model}, parameters=[], batch=(make_images(batch_size),), fit=fit,
        optimizer="none", lr=0.0, make_images=make_images,
        info={"method": "PatchCore", "loss": "none (fit): patch embedding, greedy k-center coreset on a 128-d "
              "random projection", "fits": ["memory_bank"], "fit_batch_size": batch_size,
              "simplified": ["greedy selection starts from one random patch (anomalib), not the authors' ten"]},
    )
