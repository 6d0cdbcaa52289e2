"""What the config checks (src/config.py, src/data, src/budget.py) count as a number."""

import math
import numbers


def is_number(v) -> bool:
    """A finite real number; YAML's true/false are not numbers."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def is_integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
