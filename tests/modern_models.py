"""Correct targets with the models people train today, written the way their libraries write
them (torch only: the torchvision wheel does not import beside the CPU torch here):

- ``resnet``: a stock-torchvision-style ResNet (``BasicBlock`` with one ``nn.ReLU(inplace=True)``
  called twice per block, batch norm, ``out += identity``, a max-pool stem);
- ``groupnorm``: the same ResNet with ``nn.GroupNorm`` (no DeepExplainer rule);
- ``convnext``: ConvNeXt blocks (7x7 depthwise conv, ``LayerNorm`` over channels-last
  activations, ``GELU``, layer scale);
- ``efficientnet``: MBConv blocks (``SiLU``, squeeze-excitation: a product of two activations);
- ``vit``: a tiny vision transformer (patch embedding, class token, ``nn.MultiheadAttention``).

Each trains on the digits reference's training split with the reference preprocessing (a few
seconds, once per process) and is served like a user would. The whole property suite must
hold for each (``tests/test_modern_models.py``): the attribution properties pick a method that
is exact for the model instead of blaming the pipeline for an explainer's limits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from mlprop import Target
from mlprop.digits import pipeline
from mlprop.digits.preprocess import INPUT_RANGE, MEAN, STD, preprocess
from tests.alt_targets import reference_target, seeded

NUM_CLASSES = 10


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: one in-place ReLU instance used twice in forward."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), norm_layer(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ResNet layout; the defaults are narrowed for 1x28x28 inputs,
    :func:`resnet18` gives torchvision's ResNet-18 (7x7 stride-2 stem, 2-2-2-2 blocks)."""

    def __init__(self, norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d, *,
                 in_channels: int = 1, widths: tuple[int, ...] = (16, 32, 64),
                 blocks: int = 1, stem: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = stem or conv3x3(in_channels, widths[0])
        self.bn1 = norm_layer(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        layers, inplanes = [], widths[0]
        for index, planes in enumerate(widths):
            stage = [BasicBlock(inplanes, planes, 1 if index == 0 else 2, norm_layer)]
            stage += [BasicBlock(planes, planes, norm_layer=norm_layer)
                      for _ in range(blocks - 1)]
            layers.append(nn.Sequential(*stage) if blocks > 1 else stage[0])
            inplanes = planes
        self.layer1, self.layer2, self.layer3 = layers[:3]
        self.layer4 = layers[3] if len(layers) > 3 else nn.Identity()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18() -> ResNet:
    """torchvision's ``resnet18`` (11.2 M parameters) for 3-channel inputs."""
    return ResNet(in_channels=3, widths=(64, 128, 256, 512), blocks=2,
                  stem=nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False))


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(4, channels)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor (ConvNeXt's channels-last trick)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))  # torchvision's layer scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dwconv(x).permute(0, 2, 3, 1)
        out = self.pwconv2(self.act(self.pwconv1(self.norm(out))))
        return x + (self.gamma * out).permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 4, stride=4), LayerNorm2d(32, eps=1e-6))
        self.stages = nn.Sequential(ConvNeXtBlock(32), ConvNeXtBlock(32))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.norm = nn.LayerNorm(32, eps=1e-6)
        self.head = nn.Linear(32, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(torch.flatten(self.pool(self.stages(self.stem(x))), 1)))


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.activation = nn.SiLU()
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.SiLU(),
            nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.SiLU(),
            SqueezeExcitation(hidden, max(1, cin // 4)),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_residual else out


class EfficientNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.SiLU(),
            MBConv(16, 16, 1), MBConv(16, 24, 2),
            nn.Conv2d(24, 64, 1, bias=False), nn.BatchNorm2d(64), nn.SiLU())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.ln_1(x)
        x = x + self.self_attention(normed, normed, normed, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class VisionTransformer(nn.Module):
    """torchvision's ViT layout, tiny: 4x4 patches of a 28x28 image (49 tokens), width 32."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.conv_proj = nn.Conv2d(1, dim, 4, stride=4)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, 50, dim) * 0.02)
        self.layers = nn.Sequential(EncoderBlock(dim, 4), EncoderBlock(dim, 4))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.conv_proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.class_token.expand(len(x), -1, -1), tokens], dim=1)
        return self.head(self.ln(self.layers(tokens + self.pos_embedding))[:, 0])


def _make_target(name: str, make: Callable[[], nn.Module], epochs: int, lr: float = 3e-3,
                 ) -> Target:
    """``make``'s model trained on the digits reference (AdamW, batches of 32), with the
    reference preprocessing and its declared constants."""
    return dataclasses.replace(
        reference_target(name, make, preprocess, (1, 28, 28), INPUT_RANGE, epochs, lr=lr,
                         batch=32, optimizer=torch.optim.AdamW),
        channel_normalization=((MEAN,), (STD,)))


resnet = _make_target("resnet", ResNet, epochs=4)
groupnorm = _make_target("groupnorm", lambda: ResNet(norm_layer=group_norm), epochs=4)
convnext = _make_target("convnext", ConvNeXt, epochs=12)
efficientnet = _make_target("efficientnet", EfficientNet, epochs=6)
vit = _make_target("vit", VisionTransformer, epochs=10, lr=2e-3)

TARGETS = (resnet, groupnorm, convnext, efficientnet, vit)


def _resnet18_224() -> Target:
    """A stock-style ResNet-18 on 3x224x224 inputs (tests/large_model.py's preprocessing),
    *untrained* (training it here would take hours): for the attribution properties' time
    and memory on a real-size model (benchmarks/attribution_methods.py), not for accuracy."""
    from tests import large_model

    build = seeded(resnet18)
    return Target(name="resnet18-224-stock", schema=large_model.SCHEMA,
                  input_shape=(3, large_model.SIZE, large_model.SIZE),
                  input_range=large_model.target.input_range,
                  preprocess=large_model.preprocess, build_model=build,
                  trained_model=lambda: build(3).eval(), holdout=pipeline.holdout)


resnet18_224 = _resnet18_224()

