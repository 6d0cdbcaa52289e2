"""Models: CIFAR PreResNets and VGGs registered in timm, norm swapping, the scale-invariant
layouts."""

from src.models import preresnet, vgg  # noqa: F401  (register preresnet20/..., vgg11_cifar/...)
from src.models.factory import LAYOUTS, NORMS, PAPER_B, Split, build_model, split_parameters

__all__ = ["LAYOUTS", "NORMS", "PAPER_B", "Split", "build_model", "split_parameters"]
