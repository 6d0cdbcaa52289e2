"""The figures, one module each (or one per family of figures that share a setting): panels,
curve labels, the paper's numbers, the claims and their thresholds, registered by name with
@register_figure. Importing this package imports every module in it, so adding a figure is one
conf/experiment/fig_*.yaml and one module here."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
