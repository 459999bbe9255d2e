"""The colour reference network: a small ResNet (residual blocks with batch norm).

Every activation and pooling is its own module instance (never functional, in-place or
reused), so SHAP's DeepExplainer can hook each one and explain the network exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from mlprop.colour.data import NUM_CLASSES


class BasicBlock(nn.Module):
    """conv-bn-relu-conv-bn plus a shortcut (1x1 conv + bn when the shape changes), relu."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


class ColourResNet(nn.Module):
    """3x32x32 -> logits (N, 20): a stride-2 stem (32 -> 16), three stages of one residual
    block (16, 32, 64 channels; strides 1, 2, 2), global average pooling, a linear head."""

    def __init__(self, num_classes: int = NUM_CLASSES, widths: tuple[int, ...] = (16, 32, 64),
                 ) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks, cin = [], widths[0]
        for index, width in enumerate(widths):
            blocks.append(BasicBlock(cin, width, stride=1 if index == 0 else 2))
            cin = width
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.flatten(self.pool(self.stages(self.stem(x)))))


def build_model(seed: int) -> ColourResNet:
    """A freshly initialised network; the same ``seed`` gives bit-identical parameters
    (drawn from a forked torch RNG: the caller's global state is untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ColourResNet()
