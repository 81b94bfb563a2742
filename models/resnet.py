"""ResNets and their plain (no-skip) twins.

One block class per kind, with a ``shortcut`` flag: a plain network is the same
ResNet built with ``shortcut=False`` (He et al. 2015, Sec. 4.1/4.2).

* CIFAR layout (He et al. 2015, Sec. 4.2): 3x3 conv 16, three stages of n
  BasicBlocks at 16/32/64 channels (strides 1, 2, 2), global average pool, linear.
  Depth 6n + 2.  Shortcut ``"B"`` projects with 1x1 conv + BN where the shape
  changes (the networks of Li et al. 2018); ``"A"`` pads with zeros (no parameters).
* ImageNet layout: parameter names and computation identical to torchvision's
  ``resnet18 ... resnet152`` (BasicBlock, Bottleneck with expansion 4, stride on
  the 3x3 conv), so a torchvision state_dict loads as is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .registry import ModelError, register_model

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "CifarResNet",
    "ResNet",
    "has_skip_connections",
    "SHORTCUT_TYPES",
]

SHORTCUT_TYPES = ("A", "B")


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class PadShortcut(nn.Module):
    """Option A of He et al. 2015: subsample by stride, zero-pad the new channels."""

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra = out_planes - in_planes

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        half = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, half, self.extra - half))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions; ``out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    With ``shortcut=False`` the addition is dropped (a plain block) and no
    projection exists.
    """

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        shortcut: bool = True,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.shortcut = shortcut

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride, as torchvision's v1.5), 1x1 expand x4."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        shortcut: bool = True,
    ) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.shortcut = shortcut

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.shortcut:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


def _last_bn(block: nn.Module) -> nn.BatchNorm2d:
    return block.bn3 if isinstance(block, Bottleneck) else block.bn2


def _init_weights(model: nn.Module, *, zero_init_residual: bool) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        # Each residual branch starts as the identity, which helps large-batch
        # training (Goyal et al. 2017). Plain blocks are skipped: zeroing their
        # last BN would cut the signal path entirely.
        for m in model.modules():
            if isinstance(m, BasicBlock | Bottleneck) and m.shortcut:
                nn.init.zeros_(_last_bn(m).weight)


def has_skip_connections(model: nn.Module) -> bool:
    """True when any residual block of `model` adds its input back."""
    return any(isinstance(m, BasicBlock | Bottleneck) and m.shortcut for m in model.modules())


class CifarResNet(nn.Module):
    """ResNet for 32x32 inputs (He et al. 2015, Sec. 4.2): depth 6n+2."""

    def __init__(
        self,
        num_blocks: int,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        shortcut: bool = True,
        shortcut_type: str = "B",
        width: int = 1,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if shortcut_type not in SHORTCUT_TYPES:
            raise ModelError(
                f"shortcut_type must be one of {SHORTCUT_TYPES}, got {shortcut_type!r}"
            )
        if width < 1:
            raise ModelError(f"width must be a positive integer, got {width!r}")
        self.shortcut = shortcut
        self.shortcut_type = shortcut_type
        widths = [16 * width, 32 * width, 64 * width]
        self.inplanes = widths[0]
        self.conv1 = conv3x3(in_channels, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(widths[0], num_blocks, stride=1)
        self.layer2 = self._make_layer(widths[1], num_blocks, stride=2)
        self.layer3 = self._make_layer(widths[2], num_blocks, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[2], num_classes)
        _init_weights(self, zero_init_residual=zero_init_residual)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for i in range(blocks):
            s = stride if i == 0 else 1
            downsample = None
            if self.shortcut and (s != 1 or self.inplanes != planes):
                if self.shortcut_type == "B":
                    downsample = nn.Sequential(
                        conv1x1(self.inplanes, planes, s), nn.BatchNorm2d(planes)
                    )
                else:
                    downsample = PadShortcut(self.inplanes, planes, s)
            layers.append(BasicBlock(self.inplanes, planes, s, downsample, shortcut=self.shortcut))
            self.inplanes = planes
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:  # x: (B, C, 32, 32)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (B, num_classes)


class ResNet(nn.Module):
    """ImageNet-layout ResNet, parameter-for-parameter torchvision's."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: Sequence[int],
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        shortcut: bool = True,
        zero_init_residual: bool = False,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        self.shortcut = shortcut
        self.inplanes = 64
        if small_input:
            # 32x32 images: a 7x7/2 stem and max-pool would leave 8x8 maps after the stem.
            self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, 64, layers[0], stride=1)
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        _init_weights(self, zero_init_residual=zero_init_residual)

    def _make_layer(
        self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int
    ) -> nn.Sequential:
        layers = []
        for i in range(blocks):
            s = stride if i == 0 else 1
            downsample = None
            if self.shortcut and (s != 1 or self.inplanes != planes * block.expansion):
                downsample = nn.Sequential(
                    conv1x1(self.inplanes, planes * block.expansion, s),
                    nn.BatchNorm2d(planes * block.expansion),
                )
            layers.append(block(self.inplanes, planes, s, downsample, shortcut=self.shortcut))
            self.inplanes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:  # x: (B, C, H, W)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (B, num_classes)


# ----------------------------------------------------------------- builders
# CIFAR: depth = 6n + 2.
_CIFAR_DEPTHS = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}
# ImageNet: block type and blocks per stage (He et al. 2015, Table 1).
_IMAGENET_LAYOUTS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


def _cifar(depth: int, shortcut: bool, kwargs: dict) -> CifarResNet:
    return CifarResNet(_CIFAR_DEPTHS[depth], shortcut=shortcut, **kwargs)


def _imagenet(depth: int, shortcut: bool, kwargs: dict) -> ResNet:
    block, layers = _IMAGENET_LAYOUTS[depth]
    return ResNet(block, layers, shortcut=shortcut, **kwargs)


@register_model
def resnet20(**kwargs) -> CifarResNet:
    return _cifar(20, True, kwargs)


@register_model
def resnet32(**kwargs) -> CifarResNet:
    return _cifar(32, True, kwargs)


@register_model
def resnet44(**kwargs) -> CifarResNet:
    return _cifar(44, True, kwargs)


@register_model
def resnet56(**kwargs) -> CifarResNet:
    return _cifar(56, True, kwargs)


@register_model
def resnet110(**kwargs) -> CifarResNet:
    return _cifar(110, True, kwargs)


@register_model
def plain20(**kwargs) -> CifarResNet:
    return _cifar(20, False, kwargs)


@register_model
def plain32(**kwargs) -> CifarResNet:
    return _cifar(32, False, kwargs)


@register_model
def plain44(**kwargs) -> CifarResNet:
    return _cifar(44, False, kwargs)


@register_model
def plain56(**kwargs) -> CifarResNet:
    return _cifar(56, False, kwargs)


@register_model
def plain110(**kwargs) -> CifarResNet:
    return _cifar(110, False, kwargs)


@register_model
def resnet18(**kwargs) -> ResNet:
    return _imagenet(18, True, kwargs)


@register_model
def resnet34(**kwargs) -> ResNet:
    return _imagenet(34, True, kwargs)


@register_model
def resnet50(**kwargs) -> ResNet:
    return _imagenet(50, True, kwargs)


@register_model
def resnet101(**kwargs) -> ResNet:
    return _imagenet(101, True, kwargs)


@register_model
def resnet152(**kwargs) -> ResNet:
    return _imagenet(152, True, kwargs)


@register_model
def plain18(**kwargs) -> ResNet:
    return _imagenet(18, False, kwargs)


@register_model
def plain34(**kwargs) -> ResNet:
    return _imagenet(34, False, kwargs)


@register_model
def plain50(**kwargs) -> ResNet:
    return _imagenet(50, False, kwargs)


@register_model
def plain101(**kwargs) -> ResNet:
    return _imagenet(101, False, kwargs)


@register_model
def plain152(**kwargs) -> ResNet:
    return _imagenet(152, False, kwargs)
