"""The reference CNN: two conv blocks, dropout, two linear layers; outputs logits.

Every activation and pooling is its own ``nn.Module`` instance (never functional, never
in-place, never reused) so that SHAP's DeepExplainer can hook each one and explain the
network exactly.
"""

from __future__ import annotations

import torch
from torch import nn

NUM_CLASSES = 10


class DigitCNN(nn.Module):
    """1x28x28 -> logits (N, 10)."""

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 16,
                 hidden: int = 64, dropout: float = 0.25) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(2 * width * 7 * 7, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_model(seed: int) -> DigitCNN:
    """A freshly initialised CNN; the same ``seed`` gives bit-identical parameters.

    Initialisation draws from a forked torch RNG, so the caller's global state is untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DigitCNN()
