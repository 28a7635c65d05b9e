"""ViT-B/16 (Dosovitskiy et al.: "An Image is Worth 16x16 Words: Transformers for Image Recognition at
Scale", ICLR 2021, arXiv:2010.11929).

Layer shapes from the paper's Table 1 and Eq. 1-4 (and google-research/vision_transformer, Apache-2.0,
and torchvision's ``vit_b_16``, BSD-3-Clause, read for their facts; no code copied): 16x16 patches
embedded by a 16x16/16 convolution to 768 channels, a class token and learned position embeddings
(197 tokens at 224x224), 12 pre-norm encoder blocks (LayerNorm eps 1e-6, 12-head self-attention
with a joint qkv projection with bias, LayerNorm, an MLP of 3072 with exact GELU), a final LayerNorm,
and the 1000-way head on the class token.

Attention is ``F.scaled_dot_product_attention`` (what a deployment's attention kernel computes; the
FLOP counter counts its two matrix products). Counts: 86,567,656 parameters (torchvision; the
paper's 86 M); 17.6 GFLOPs is DeiT's and torchvision's figure at 224x224, counted as multiply-adds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.suites.models.vision.common import NUM_CLASSES, separate_top_classes

__all__ = ["VisionTransformer", "build_vit_b16"]


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        n, tokens, dim = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(n, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        x = x + self.proj(attended.transpose(1, 2).reshape(n, tokens, dim))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, image_size: int = 224, patch: int = 16, dim: int = 768, depth: int = 12, heads: int = 12,
                 mlp_dim: int = 3072, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, (image_size // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*(EncoderBlock(dim, heads, mlp_dim) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (n, patches, dim)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def build_vit_b16(seed: int = 0, image_size: int = 224, dim: int = 768, depth: int = 12, heads: int = 12,
                  mlp_dim: int = 3072) -> VisionTransformer:
    """ViT-B/16; ``dim``, ``depth``, ``heads``, ``mlp_dim``, ``image_size`` scale it down for tests."""
    torch.manual_seed(seed)
    model = VisionTransformer(image_size, 16, dim, depth, heads, mlp_dim)
    separate_top_classes(model.head, seed)
    return model.eval()
