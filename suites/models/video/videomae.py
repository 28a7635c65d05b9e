"""VideoMAE ViT-S/16 fine-tuned for classification (Tong et al., "VideoMAE: Masked Autoencoders are
Data-Efficient Learners for Self-Supervised Video Pre-Training", NeurIPS 2022).

Shapes follow the paper and MCG-NJU/VideoMAE's ``modeling_finetune.py`` (CC BY-NC 4.0; read for shapes
only): 16 frames of 224x224 cut into 2x16x16 tubelets (a Conv3d with that kernel and stride) give
8 x 14 x 14 = 1568 tokens of width 384 with fixed sinusoidal position embeddings (a buffer, not
parameters); 12 pre-norm transformer blocks (6 heads, MLP ratio 4, GELU, LayerNorm eps 1e-6, a query
and a value bias but no key bias); mean pooling over tokens, LayerNorm, a 400-class linear head
(Kinetics-400). 22,033,936 parameters (the paper's 22 M). Attention is PyTorch's
``scaled_dot_product_attention`` (counted by FlopCounterMode; exported to ONNX as MatMul/Softmax).
Input (N, 3, 16, 224, 224) normalised with ImageNet's mean and std.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["VideoViT", "build_videomae_s", "sinusoid_table"]


def sinusoid_table(positions: int, dim: int) -> Tensor:
    """The fixed sine/cosine position table of the original transformer (positions x dim)."""
    position = torch.arange(positions, dtype=torch.float64).unsqueeze(1)
    exponent = torch.div(torch.arange(dim), 2, rounding_mode="floor").to(torch.float64) * 2 / dim
    angles = position / torch.pow(10000.0, exponent)
    table = torch.where(torch.arange(dim) % 2 == 0, torch.sin(angles), torch.cos(angles))
    return table.to(torch.float32)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, tokens, dim = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(n, tokens, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, tokens, dim))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VideoViT(nn.Module):
    def __init__(self, frames: int = 16, size: int = 224, tubelet: int = 2, patch: int = 16, dim: int = 384,
                 depth: int = 12, heads: int = 6, num_classes: int = 400) -> None:
        super().__init__()
        self.patch_embed = nn.Conv3d(3, dim, (tubelet, patch, patch), stride=(tubelet, patch, patch))
        tokens = (frames // tubelet) * (size // patch) ** 2
        self.register_buffer("pos_embed", sinusoid_table(tokens, dim).unsqueeze(0), persistent=False)
        self.blocks = nn.Sequential(*(Block(dim, heads) for _ in range(depth)))
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, clip: Tensor) -> Tensor:
        x = self.patch_embed(clip).flatten(2).transpose(1, 2) + self.pos_embed
        x = self.blocks(x)
        return self.head(self.fc_norm(x.mean(dim=1)))


def build_videomae_s(seed: int = 0, **overrides: object) -> VideoViT:
    torch.manual_seed(seed)
    model = VideoViT(**overrides)  # type: ignore[arg-type]
    with torch.no_grad():  # ViT weights are initialised small (truncated normal, std 0.02), as the reference
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias) if module.bias is not None else None
    return model.eval()


