"""A correct target with a real-size model: a ResNet-18 (11.2 M parameters, batch norm,
residual blocks, written with torch alone) on 3x224x224 inputs made from the raw grey
images (resized, replicated to three channels, ImageNet-style normalisation).

Used by tests/test_large_model.py and benchmarks/model_memory.py: the model and serving
properties must pass on it, with memory bounded by the model and the input size.
``training_target`` adds a torchvision-style ``train`` with the settings that
docs/pages/how-to/training.md advises for a ResNet-size model, for the training component's
time and memory (``benchmarks/model_memory.py --component training --whole --scale 0.5``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlprop import ImageSchema, Target

SCHEMA = ImageSchema(num_classes=10, min_side=8, max_side=32)
SIZE = 224
MEAN, STD = 0.449, 0.226


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.relu2 = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False),
                                          nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        layers, inputs = [], 64
        for outputs, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(inputs, outputs, stride), BasicBlock(outputs, outputs, 1)]
            inputs = outputs
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


def preprocess(images: np.ndarray) -> np.ndarray:
    SCHEMA.validate(images)
    batch = torch.from_numpy(np.array(images, dtype=np.float32))[:, None] / 255.0
    if len(batch):
        batch = F.interpolate(batch, size=(SIZE, SIZE), mode="bilinear", align_corners=False,
                              antialias=True).clamp(0.0, 1.0)
    else:
        batch = batch.new_zeros((0, 1, SIZE, SIZE))
    return ((batch.expand(-1, 3, -1, -1) - MEAN) / STD).contiguous().numpy()


def build_model(seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ResNet18(SCHEMA.num_classes)


_SERVED: dict[str, nn.Module] = {}


def predict(images: np.ndarray) -> np.ndarray:
    if "model" not in _SERVED:
        _SERVED["model"] = build_model(3).eval()
    with torch.inference_mode():
        logits = _SERVED["model"](torch.from_numpy(preprocess(images)))
    return torch.softmax(logits, dim=1).numpy()


target = Target(name="resnet18-224", schema=SCHEMA, input_shape=(3, SIZE, SIZE),
                input_range=((0.0 - MEAN) / STD, (1.0 - MEAN) / STD), preprocess=preprocess,
                build_model=build_model, predict=predict)


def train(images: np.ndarray, labels: np.ndarray, *, seed: int, epochs: int) -> nn.Module:
    """Adam over seeded shuffled batches of 16, the global generators left as they were."""
    inputs = torch.from_numpy(preprocess(images))
    targets = torch.from_numpy(np.array(labels, np.int64))
    model = build_model(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(epochs):
            model.train()
            for batch in torch.randperm(len(targets), generator=generator).split(16):
                optimizer.zero_grad()
                F.cross_entropy(model(inputs[batch]), targets[batch]).backward()
                optimizer.step()
    return model.eval()


training_target = target.replace(train=train, thresholds={
    "train_epochs": 20, "train_short_epochs": 1, "train_watch_epochs": 2})

