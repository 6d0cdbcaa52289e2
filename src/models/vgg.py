"""Paper B's network: a CIFAR VGG with BN, registered in timm as vgg11_cifar and vgg16_cifar.

Paper B (Appendix D) trains "a modified VGG" in which every kernel is scale invariant, the
(gamma, beta) of every BN but the last are scale invariant, and the last BN's (gamma, beta)
are the only scale-variant parameters. That layout needs a BN after the classifier too, so
the network here is: [3x3 conv (no bias) -> BN -> ReLU] blocks with 2x2 max pooling between
stages, then a linear classifier without bias, then a BatchNorm1d over the logits (the last
BN). Then
* each conv kernel and the classifier's kernel feed a BN: each is scale invariant alone;
* each conv BN's (gamma, beta) pass through ReLU and max pooling (both positively
  homogeneous) into a layer followed by BN: each pair is scale invariant as a set;
* the logits' BN sets the scale of the logits: its (gamma, beta) are scale variant.
src/models/factory.py finds these sets numerically (model.scale_invariant=paper_b).

The depth is not known; VGG11's widths are the default: the lightest of the VGG family, as
the miniature on 8x8 digits needs, and the widths multiply by `width` for a narrower net.
Pooling uses ceil_mode, so a 1x1 map passes unchanged: on 8x8 inputs the last two stages run
at 1x1 instead of failing.
"""

import torch
from timm.layers import get_act_layer, get_norm_layer
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

# Channels of each 3x3 conv; "M": 2x2 max pooling (Simonyan & Zisserman 2015, configs A and D).
STAGES = {
    "vgg11_cifar": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16_cifar": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                    512, 512, 512, "M"),
}


class CifarVGG(nn.Module):
    def __init__(
        self,
        layers: tuple = STAGES["vgg11_cifar"],
        num_classes: int = 10,
        in_chans: int = 3,
        width: float = 1.0,
        norm_layer="batchnorm2d",
        act_layer="relu",
        drop_rate: float = 0.0,
    ):
        super().__init__()
        norm_layer, act_layer = get_norm_layer(norm_layer), get_act_layer(act_layer)
        self.num_classes, self.drop_rate = num_classes, drop_rate
        features, chs = [], in_chans
        for layer in layers:
            if layer == "M":
                features.append(nn.MaxPool2d(2, ceil_mode=True))
                continue
            out = max(1, round(layer * width))
            features += [nn.Conv2d(chs, out, 3, padding=1, bias=False), norm_layer(out),
                         act_layer()]
            chs = out
        self.features = nn.Sequential(*features)
        self.num_features = chs
        self.pool = nn.AdaptiveMaxPool2d(1)  # 1x1 already at 32x32 and 8x8
        self.fc = nn.Linear(chs, num_classes, bias=False)
        # The last BN, on the logits; none when the net has no normalisation.
        self.head_norm = (nn.Identity() if norm_layer in (nn.Identity, None)
                          else nn.BatchNorm1d(num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x).flatten(1)
        if self.drop_rate:
            x = nn.functional.dropout(x, self.drop_rate, self.training)
        return self.head_norm(self.fc(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


default_cfgs = generate_default_cfgs(
    {name: dict(num_classes=10, input_size=(3, 32, 32), pool_size=(1, 1),
                first_conv="features.0", classifier="fc") for name in STAGES}
)


def _create(variant: str, pretrained: bool = False, **kwargs) -> CifarVGG:
    if pretrained:
        raise ValueError(f"{variant} has no pretrained weights")
    return build_model_with_cfg(CifarVGG, variant, pretrained, layers=STAGES[variant], **kwargs)


@register_model
def vgg11_cifar(pretrained: bool = False, **kwargs) -> CifarVGG:
    return _create("vgg11_cifar", pretrained, **kwargs)


@register_model
def vgg16_cifar(pretrained: bool = False, **kwargs) -> CifarVGG:
    return _create("vgg16_cifar", pretrained, **kwargs)
