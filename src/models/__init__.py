"""Models: CIFAR PreResNets and VGGs registered in timm, norm swapping, paper A's frozen
layout. Which parameters are scale invariant is found in src/optim/groups.py."""

from src.models import preresnet, vgg  # noqa: F401  (register preresnet20/..., vgg11_cifar/...)
from src.models.factory import NORMS, build_model

__all__ = ["NORMS", "build_model"]
