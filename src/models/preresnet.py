"""CIFAR pre-activation ResNets (He et al. 2016), registered in timm as preresnet20/32/56/110.

Depth 6n + 2: a 3x3 stem, three stages of n basic blocks with 16, 32 and 64 channels, then a
final norm + ReLU before global average pooling and the classifier. Convolutions carry no bias,
so with frozen norm affines and a frozen classifier the network is scale invariant in all its
trained weights (each norm layer's input is homogeneous in them).
"""

import torch
from timm.layers import get_act_layer, get_norm_layer
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn


def conv3x3(in_chs: int, out_chs: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)


class PreActBlock(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, stride: int, norm_layer, act_layer):
        super().__init__()
        self.norm1 = norm_layer(in_chs)
        self.act1 = act_layer()
        self.conv1 = conv3x3(in_chs, out_chs, stride)
        self.norm2 = norm_layer(out_chs)
        self.act2 = act_layer()
        self.conv2 = conv3x3(out_chs, out_chs)
        self.shortcut = None
        if stride != 1 or in_chs != out_chs:
            self.shortcut = nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.norm1(x))
        # The projection sees the pre-activated input, as in the original pre-act ResNet.
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.act2(self.norm2(out)))
        return out + shortcut


class PreResNet(nn.Module):
    def __init__(
        self,
        depth: int = 32,
        num_classes: int = 10,
        in_chans: int = 3,
        widths: tuple[int, ...] = (16, 32, 64),
        width: float = 1.0,
        norm_layer="batchnorm2d",
        act_layer="relu",
        drop_rate: float = 0.0,
    ):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"PreResNet depth must be 6n + 2, got {depth}")
        blocks_per_stage = (depth - 2) // 6
        widths = tuple(max(1, round(w * width)) for w in widths)  # `width` multiplies them all
        norm_layer, act_layer = get_norm_layer(norm_layer), get_act_layer(act_layer)
        self.num_classes, self.num_features = num_classes, widths[-1]
        self.drop_rate = drop_rate

        self.stem = conv3x3(in_chans, widths[0])
        stages, in_chs = [], widths[0]
        for i, out_chs in enumerate(widths):
            blocks = []
            for j in range(blocks_per_stage):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(PreActBlock(in_chs, out_chs, stride, norm_layer, act_layer))
                in_chs = out_chs
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.norm = norm_layer(in_chs)
        self.act = act_layer()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_chs, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.stages(self.stem(x))))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x).flatten(1)
        if self.drop_rate:
            x = nn.functional.dropout(x, self.drop_rate, self.training)
        return self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _create(variant: str, depth: int, pretrained: bool = False, **kwargs) -> PreResNet:
    if pretrained:
        raise ValueError(f"{variant} has no pretrained weights")
    return build_model_with_cfg(PreResNet, variant, pretrained, depth=depth, **kwargs)


default_cfgs = generate_default_cfgs(
    {
        f"preresnet{depth}": dict(
            num_classes=10, input_size=(3, 32, 32), pool_size=(8, 8),
            first_conv="stem", classifier="fc",
        )
        for depth in (20, 32, 56, 110)
    }
)


@register_model
def preresnet20(pretrained: bool = False, **kwargs) -> PreResNet:
    return _create("preresnet20", 20, pretrained, **kwargs)


@register_model
def preresnet32(pretrained: bool = False, **kwargs) -> PreResNet:
    return _create("preresnet32", 32, pretrained, **kwargs)


@register_model
def preresnet56(pretrained: bool = False, **kwargs) -> PreResNet:
    return _create("preresnet56", 56, pretrained, **kwargs)


@register_model
def preresnet110(pretrained: bool = False, **kwargs) -> PreResNet:
    return _create("preresnet110", 110, pretrained, **kwargs)
