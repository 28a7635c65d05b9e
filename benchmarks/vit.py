"""A ViT-S-sized vision transformer with 6 encoder layers (ViT-S/6): patch 16, width 384, 6 heads,
MLP 1536, 224x224 input, seeded random weights, in plain PyTorch. The benchmarks of the stopping
rule and the intervals use it as a mid-sized model (~10 M parameters, ~4.6 GFLOPs per image) that
is neither convolutional nor one of the suite's, through `suite=custom model.target=benchmarks.vit:build`."""

from __future__ import annotations


def build(seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class ViT(nn.Module):
        def __init__(self, image: int = 224, patch: int = 16, width: int = 384, depth: int = 6, heads: int = 6,
                     mlp: int = 1536, classes: int = 1000) -> None:
            super().__init__()
            self.embed = nn.Conv2d(3, width, kernel_size=patch, stride=patch)
            tokens = (image // patch) ** 2 + 1
            self.cls = nn.Parameter(torch.randn(1, 1, width) * 0.02)
            self.pos = nn.Parameter(torch.randn(1, tokens, width) * 0.02)
            layer = nn.TransformerEncoderLayer(width, heads, mlp, dropout=0.0, activation="gelu", batch_first=True,
                                               norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(width)
            self.head = nn.Linear(width, classes)

        def forward(self, x):
            x = self.embed(x).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
            x = self.encoder(x)
            return self.head(self.norm(x[:, 0]))

    return ViT().eval()
