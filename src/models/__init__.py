"""Models: CIFAR PreResNets registered in timm, norm swapping, the scale-invariant mode."""

from src.models import preresnet  # noqa: F401  (registers preresnet20/32/56/110 in timm)
from src.models.factory import NORMS, build_model, invariant_sets, split_parameters

__all__ = ["NORMS", "build_model", "invariant_sets", "split_parameters"]
