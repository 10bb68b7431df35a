"""A small CNN for tiny images (8x8 digits, 32 px crops): three conv-bn-relu blocks, pool, head.

Channels grow ``width -> 2*width -> 4*width``; the second and third blocks halve the resolution
(stride 2), a global average pool makes the head independent of the image size.
"""

from __future__ import annotations

import torch
from torch import nn

from fairensemble.common.errors import ConfigError


def conv_bn_relu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    head_name = "head"  # the classifier: pretrained weights keep it only if it fits the task

    def __init__(
        self, num_classes: int, in_channels: int = 3, width: int = 32, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if width <= 0:
            raise ConfigError(f"width: expected a positive number of channels, got {width}")
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, width, stride=1),
            conv_bn_relu(width, 2 * width, stride=2),
            conv_bn_relu(2 * width, 4 * width, stride=2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.head(self.dropout(x))


def build(num_classes: int, in_channels: int = 3, width: int = 32, dropout: float = 0.0
          ) -> SmallCNN:
    return SmallCNN(num_classes, in_channels, width=width, dropout=dropout)
