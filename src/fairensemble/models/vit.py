"""Vision Transformer (ViT-Tiny, ViT-Small, patch 16) in pure torch, with timm's parameter names.

Patchify with a strided conv, prepend a class token, add a learned position embedding, run
pre-norm transformer blocks, classify the normalised class token. Names follow timm's
``VisionTransformer`` (``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.N.attn.qkv``,
``norm``, ``head``...), so ``vit_tiny_patch16_224`` / ``vit_small_patch16_224`` state dicts
load with ``strict=True`` at the same image size and ``num_classes``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fairensemble.common.errors import ConfigError

PATCH = 16


class PatchEmbed(nn.Module):
    """Non-overlapping PATCH x PATCH patches -> ``dim``-vectors, one token per patch."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=PATCH, stride=PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, N, dim]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # [B, heads, N, D/heads]
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    head_name = "head"  # the classifier: pretrained weights keep it only if it fits the task

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        num_classes: int = 1000,
        in_channels: int = 3,
        image_size: int = 224,
    ) -> None:
        super().__init__()
        if image_size <= 0 or image_size % PATCH:
            raise ConfigError(
                f"image_size: expected a positive multiple of {PATCH}, got {image_size}"
            )
        n_patches = (image_size // PATCH) ** 2
        self.patch_embed = PatchEmbed(in_channels, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + 1, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        # timm's default initialisation
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def vit_tiny(num_classes: int = 1000, in_channels: int = 3, image_size: int = 224) -> nn.Module:
    return VisionTransformer(192, 12, 3, num_classes, in_channels, image_size)


def vit_small(num_classes: int = 1000, in_channels: int = 3, image_size: int = 224) -> nn.Module:
    return VisionTransformer(384, 12, 6, num_classes, in_channels, image_size)
