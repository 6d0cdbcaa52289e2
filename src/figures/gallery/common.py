"""What paper A's figures (and the rotational equilibrium's) share: the paper's setting, the
schedules' names, the panels and the tolerance on a theorem's LR."""

from src.figures.figure import Panel

PAPER_A = {"dataset.name": "cifar10", "model.name": "preresnet32"}
SCHEDULES = {"step": "Step Decay", "texp": "TEXP", "exp": "ExpLR", "constant": "Constant LR + WD",
             "cosine": "Cosine", "equivalent": "exponential twin of cosine",
             "instant_decay": "ExpLR + instant decay"}
EPOCH_ANGLE = "si/angular_update_epoch"

ACCURACY = Panel("test accuracy", ("test/acc",), "test accuracy")
ANGLE = Panel("angle between w_t and w_t+1 (one epoch)", (EPOCH_ANGLE,), "radians")
LR = Panel("learning rate", ("lr",), "LR", log_y=True)

# The twins' LRs are float64 products of up to 10^5 per-update ratios (sums of logs): their
# rounding stays below 1e-10 relative, while one update too many or too few shows as ~1e-3.
LR_REL_TOL = 1e-8


def schedule(cfg) -> str:
    """A job's curve: its schedule's name."""
    return SCHEDULES[cfg.schedule.name]
