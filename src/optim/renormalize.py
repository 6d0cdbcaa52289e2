"""An exact guard against overflow for exponentially growing weights and learning rates.

ExpLR and TEXP grow the LR and the squared weight norm by 1e12 to 1e26 and more. For a
scale-invariant loss paper A's equivalent scaling (theta, v, lr, wd) -> (c theta, v / c,
c^2 lr, wd / c^2) commutes with every SGD step: applying it changes no network function, only
the numbers that represent it (AdamW's and Lion's scalings: src/theory/adaptive.py). The
guard applies it to the scale-invariant group whenever its norm exceeds a bound, bringing it
back to its initial norm; the scheduler, which sets the LR and weight decay of every update,
keeps the product of all c (`scheduler.scale`).

    guard = OverflowGuard(model, optimizer, scheduler, above=1e12)
    ... optimizer.step(); scheduler.step(); guard.check()
"""

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from src.theory.adaptive import state_scaling


class OverflowGuard:
    def __init__(self, model, optimizer, scheduler, above: float | None):
        self.group = next((g for g in optimizer.param_groups
                           if g.get("name") == "scale_invariant"), None)
        self.optimizer, self.scheduler, self.above = optimizer, scheduler, above
        self.batch_norms = [m for m in model.modules() if isinstance(m, _BatchNorm)
                            and m.running_mean is not None]
        grouped = {id(p) for p in self.group["params"]} if self.group else set()
        # A norm layer's affine in the group (model.scale_invariant=paper_b) makes the next
        # norm layer's input of degree 2 in the group's scale, not 1: its running statistics
        # are not rescaled by c but started over (an evaluation recomputes them anyway,
        # trainer.bn_recalibration_batches).
        self.affine_in_group = any(id(p) in grouped for m in model.modules()
                                   if isinstance(m, _BatchNorm) for p in m.parameters())
        self.target = self.norm() if self.group else None

    @property
    def scale(self) -> float:
        """The product of all c so far: actual weights = scale * those of the process."""
        return self.scheduler.scale

    def state_dict(self) -> dict:
        """The norm the guard brings the group back to (the scale is the scheduler's)."""
        return {"target": self.target}

    def load_state_dict(self, state: dict) -> None:
        self.target = state["target"]

    @torch.no_grad()
    def norm(self) -> float:
        return torch.nn.utils.get_total_norm(self.group["params"]).item()

    def check(self) -> bool:
        """Renormalise if the group's norm exceeds the bound; True if it did."""
        if self.group is None or self.above is None:
            return False
        norm = self.norm()
        if norm <= self.above:
            return False
        r = state_scaling(self.scheduler.kind, self.target / norm)
        with torch.no_grad():
            for p in self.group["params"]:
                p.mul_(r.weights)
                state = self.optimizer.state.get(p, {})
                for key, factor in r.state.items():
                    if state.get(key) is not None:
                        state[key].mul_(factor)
            # Without norm affines in the group every norm layer's input is homogeneous of
            # degree 1 in the scale-invariant weights: BN's running statistics scale with them.
            for m in self.batch_norms:
                if self.affine_in_group:
                    m.reset_running_stats()
                else:
                    m.running_mean.mul_(r.weights)
                    m.running_var.mul_(r.weights**2)
        self.scheduler.rescale(r.c)
        return True
