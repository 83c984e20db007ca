"""A small CNN classifier of the project's testbeds (Fashion-MNIST, scenes): the feature extractor of their domain
metrics (an FID and IS analogue, KID and the class accuracy of generated samples), in the role Inception-v3 plays
for ImageNet."""
from __future__ import annotations

import torch
import torch.nn as nn


class FashionClassifier(nn.Module):
    """3 conv stages (16-32-64 channels, BN, ReLU) -> 128-d penultimate features -> class logits. Input
    [B, in_channels, image_size, image_size] in [-1, 1]; the defaults are the Fashion-MNIST classifier's."""

    feature_dim = 128

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28):
        super().__init__()

        def stage(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.MaxPool2d(2))

        self.body = nn.Sequential(stage(in_channels, 16), stage(16, 32), stage(32, 64), nn.Flatten(),
                                  nn.Linear(64 * (image_size // 8) ** 2, self.feature_dim), nn.ReLU(), nn.Dropout(0.3))
        self.head = nn.Linear(self.feature_dim, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))

    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(images)
        return f, self.head(f)
