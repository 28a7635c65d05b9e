"""Images in, anomaly map and score out: the `pipeline` measurement boundary.

A pipeline takes a batch of uint8 RGB images of the data set's native size (N, H, W, 3), and does
what an inspection line does around the model: scale to [0, 1], resize (and centre-crop) to the
model's input, or cut the image into tiles; normalise with ImageNet statistics when the model
expects it; infer; bring the anomaly map back to the image's size (stitching tiles); score.

Images come either generated (seeded, of the data set's native size) or from the user's folder
(``data.path``), decoded with Pillow before any timing: decoding is the camera's or the file
system's cost, not the hardware's under test. torch is imported only when a pipeline is built.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

from bench.suites.base import IMAGENET_MEAN, IMAGENET_STD, SuiteOptionError

__all__ = ["IMAGE_SUFFIXES", "list_images", "check_image_folder", "load_images", "synthetic_images",
           "build_pipeline", "tile_grid"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def check_image_folder(path: str) -> tuple[int, int]:
    """The folder exists and holds decodable images of one size; returns that size (H, W)."""
    folder = Path(path).expanduser()
    fix_missing = "give a folder of images (png, jpg, bmp, tif), e.g. data.path=/data/line3/good"
    if not folder.is_dir():
        raise SuiteOptionError("data.path", path, fix_missing, "does not exist or is not a folder")
    files = list_images(folder)
    if not files:
        raise SuiteOptionError("data.path", path, fix_missing, f"holds no image ({', '.join(IMAGE_SUFFIXES)})")
    from PIL import Image, UnidentifiedImageError

    sizes = set()
    for file in files[:64]:  # enough to catch a mixed folder without reading a whole archive
        try:
            with Image.open(file) as image:
                sizes.add((image.height, image.width))
        except (UnidentifiedImageError, OSError) as exc:
            raise SuiteOptionError("data.path", path, "remove or fix that file",
                                   f"holds {file.name}, which Pillow cannot decode ({exc})") from None
    if len(sizes) > 1:
        listed = ", ".join(f"{w}x{h}" for h, w in sorted(sizes))
        raise SuiteOptionError("data.path", path, "keep images of one size per folder (one camera)",
                               f"holds images of several sizes ({listed})")
    return sizes.pop()


def load_images(path: str, batch_size: int) -> Any:
    """A uint8 (batch_size, H, W, 3) tensor of the folder's images, cycling when it holds fewer."""
    import numpy as np
    import torch
    from PIL import Image

    files = list_images(Path(path).expanduser())
    arrays = []
    for i in range(batch_size):
        with Image.open(files[i % len(files)]) as image:
            arrays.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    return torch.from_numpy(np.stack(arrays))


def synthetic_images(batch_size: int, height: int, width: int, seed: int) -> Any:
    """Seeded uint8 images of a data set's native size. Pixel values do not change the speed of
    resizing or inference; the shape and type do."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch_size, height, width, 3), dtype=torch.uint8, generator=generator)


def tile_grid(height: int, width: int, tile: int) -> tuple[int, int]:
    """Rows and columns of tiles covering an image (the last row and column padded)."""
    return math.ceil(height / tile), math.ceil(width / tile)


def build_pipeline(model: Any, input_size: int, resize: Optional[int], input_norm: str,
                   tile: Optional[int] = None) -> Any:
    """The model wrapped with its data set's pre- and post-processing, as one torch module."""
    import torch
    import torch.nn.functional as F
    from torch import Tensor, nn

    class ImagePipeline(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        def _normalise(self, x: Tensor) -> Tensor:
            return (x - self.mean) / self.std if input_norm == "imagenet" else x

        def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
            n, height, width, _ = images.shape
            x = images.permute(0, 3, 1, 2).to(self.mean.dtype) / 255.0
            if tile is None:
                return self._resized(x, n, height, width)
            return self._tiled(x, n, height, width)

        def _resized(self, x: Tensor, n: int, height: int, width: int) -> tuple[Tensor, Tensor]:
            size = resize or input_size
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            top = (size - input_size) // 2
            if top:
                x = x[:, :, top:top + input_size, top:top + input_size]
            anomaly_map, score = self.model(self._normalise(x))
            if top:
                # The map covers the centre crop: put it back where the crop came from, zero around.
                anomaly_map = F.pad(anomaly_map, (top, size - input_size - top, top, size - input_size - top))
            anomaly_map = F.interpolate(anomaly_map, size=(height, width), mode="bilinear", align_corners=False)
            return anomaly_map, score

        def _tiled(self, x: Tensor, n: int, height: int, width: int) -> tuple[Tensor, Tensor]:
            assert tile is not None
            rows, cols = tile_grid(height, width, tile)
            x = F.pad(x, (0, cols * tile - width, 0, rows * tile - height))
            # (n, 3, rows*t, cols*t) -> (n*rows*cols, 3, t, t)
            tiles = x.reshape(n, 3, rows, tile, cols, tile).permute(0, 2, 4, 1, 3, 5).reshape(-1, 3, tile, tile)
            if tile != input_size:
                tiles = F.interpolate(tiles, size=(input_size, input_size), mode="bilinear", align_corners=False,
                                      antialias=True)
            maps, _ = self.model(self._normalise(tiles))
            if tile != input_size:
                maps = F.interpolate(maps, size=(tile, tile), mode="bilinear", align_corners=False)
            stitched = maps.reshape(n, rows, cols, 1, tile, tile).permute(0, 3, 1, 4, 2, 5)
            stitched = stitched.reshape(n, 1, rows * tile, cols * tile)[:, :, :height, :width]
            return stitched, stitched.amax(dim=(1, 2, 3))

    return ImagePipeline().eval()


def describe_tiles(height: int, width: int, tile: int) -> dict[str, Any]:
    rows, cols = tile_grid(height, width, tile)
    return {"tile_size": tile, "tiles_per_image": rows * cols, "tile_grid": [rows, cols]}


__all__ += ["describe_tiles"]
