"""normlr in your own training loop: the package's objects without Hydra or its command line.

    import torch
    from src.api import ExpLR, Monitor, OverflowGuard, invariant_sets

    groups = invariant_sets(model, example_batch)       # scale-invariant sets and the rest
    optimizer = torch.optim.SGD(groups, lr=0.1, momentum=0.9, weight_decay=5e-4)
    scheduler = ExpLR(optimizer, total_steps=T)          # no weight decay on the invariant sets
    guard = OverflowGuard(model, optimizer, scheduler, above=1e12)
    monitor = Monitor(optimizer, scheduler, every=10)
    for x, y in batches:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
        scheduler.step()
        guard.check()
        print(monitor())                                 # {} between logging steps

`python -m src.train` builds its runs from these same objects (src/engine/build.py,
src/engine/step.py). docs/api.md says more.
"""

from src.engine.metrics import Monitor
from src.optim.groups import invariant_sets
from src.optim.renormalize import OverflowGuard
from src.optim.scheduler import TEXP, ExpLR, InstantDecay, TableLR, TwinLR, scheduler

__all__ = ["TEXP", "ExpLR", "InstantDecay", "Monitor", "OverflowGuard", "TableLR", "TwinLR",
           "invariant_sets", "scheduler"]
