"""A small CNN built only from the from-scratch layers in layers.py.

Stages of (convolution, ReLU) x `convs`, then a 2x2 max-pool; then a hidden linear layer and the
10-way classifier: the classic VGG pattern at toy size. On 8x8 digits, with two stages:
    (N, 1, 8, 8) -> stage 1 -> (N, c1, 4, 4) -> stage 2 -> (N, c2, 2, 2) -> (N, c2*4) -> (N, 10)
Every number in CNNConfig is explained in labs/theory/04-cnn.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ..config import require
from .layers import Conv2d, Dropout, Linear, MaxPool2d, ReLU, cross_entropy


@dataclass
class CNNConfig:
    """The model section of configs/theory/digits.yaml."""

    channels: list[int] = field(default_factory=lambda: [32, 64])  # filters per stage
    convs: int = 2  # convolutions (each followed by ReLU) per stage, before its pooling
    kernel_size: int = 3  # odd; each conv sees a k x k neighbourhood (padded: size kept)
    hidden: int = 128  # width of the linear layer before the classifier
    dropout: float = 0.3  # dropout before the classifier (training only)
    image_size: int = 8  # height = width of the input images
    n_classes: int = 10  # outputs (digits 0-9)

    def check(self) -> None:
        require(len(self.channels) >= 1, "model.channels needs at least one stage")
        require(all(c >= 1 for c in self.channels), "model.channels must all be >= 1")
        require(self.convs >= 1, f"model.convs must be >= 1, got {self.convs}")
        require(
            self.kernel_size >= 1 and self.kernel_size % 2 == 1,
            f"model.kernel_size must be odd and >= 1, got {self.kernel_size}",
        )
        require(
            self.image_size % 2 ** len(self.channels) == 0,
            f"model.image_size {self.image_size} must be divisible by 2 ** (number of stages "
            f"= {len(self.channels)}): each stage halves it",
        )
        require(self.hidden >= 1, f"model.hidden must be >= 1, got {self.hidden}")
        require(0 <= self.dropout < 1, f"model.dropout must be in [0, 1), got {self.dropout}")
        require(self.n_classes >= 2, f"model.n_classes must be >= 2, got {self.n_classes}")


class CNN(nn.Module):
    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        pad = config.kernel_size // 2  # "same" padding: a stage changes size only by pooling
        layers: list[nn.Module] = []
        c_in = 1
        for c_out in config.channels:
            for _ in range(config.convs):
                layers += [Conv2d(c_in, c_out, config.kernel_size, padding=pad), ReLU()]
                c_in = c_out
            layers.append(MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = config.image_size // 2 ** len(config.channels)
        self.classifier = nn.Sequential(
            Linear(c_in * side * side, config.hidden),
            ReLU(),
            Dropout(config.dropout),
            Linear(config.hidden, config.n_classes),
        )

    def forward(
        self, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """images (N, 1, H, W) -> logits (N, n_classes), and the mean loss when labels are given."""
        logits = self.classifier(self.features(images).flatten(1))
        loss = cross_entropy(logits, labels) if labels is not None else None
        return logits, loss
