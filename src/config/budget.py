"""budget=mini applied to a checked config (conf/budget/mini.yaml, src/theory/budget.py).

The mapped weight decay, run length, batch size and milestones are written into the config,
so the run's config.yaml shows what ran, and the paper's values under budget.paper. Mapping
reads the paper's values from budget.paper once it is there: applying it again, or to the
same composed config on a relaunch, gives the same config.
"""

import math

from omegaconf import DictConfig, OmegaConf, open_dict

from src.data import train_images
from src.errors import UserError
from src.theory.budget import largest_factor, mapped_lengths, phases_kept, to_updates
from src.theory.explr import alpha_condition


def _paper_values(cfg: DictConfig) -> dict:
    """What the mapping changes, as the composed config has it."""
    paper = {"weight_decay": cfg.optimizer.weight_decay, "epochs": cfg.trainer.epochs,
             "max_steps": cfg.trainer.max_steps, "batch_size": cfg.trainer.batch_size}
    if not OmegaConf.is_interpolation(cfg.optimizer, "rest_weight_decay"):
        paper["rest_weight_decay"] = cfg.optimizer.rest_weight_decay
    if "milestones" in cfg.schedule:
        paper["milestones"] = list(cfg.schedule.milestones)
    return paper


def apply_budget(cfg: DictConfig) -> None:
    """Map cfg in place for budget=mini; budget=paper (and the toy task) leave it as it is."""
    budget = cfg.get("budget")
    if budget is None or cfg.get("task", "train") == "toy_wd_bn" or budget.get("name") == "paper":
        return
    with open_dict(cfg):
        if "paper" not in budget:
            budget.paper = _paper_values(cfg)
        _map(cfg, budget, budget.paper)


def _map(cfg, budget, paper) -> None:
    k, per_epoch = budget.k, budget.steps_per_epoch
    opt = cfg.optimizer
    if opt.get("name", "sgd") != "sgd":  # AdamW's and Lion's decay 1 - lr wd must stay > 0
        if opt.lr * k * paper.weight_decay >= 1:
            raise UserError(f"budget.k={k}: optimizer.lr x budget.k x optimizer.weight_decay = "
                            f"{opt.lr * k * paper.weight_decay:.6g} must be below 1")
    elif k > largest_factor(opt.lr, paper.weight_decay, opt.momentum):
        bound = largest_factor(opt.lr, paper.weight_decay, opt.momentum)
        condition = alpha_condition(opt.lr, paper.weight_decay, opt.momentum)
        raise UserError(
            f"budget.k={k}: optimizer.lr x budget.k x optimizer.weight_decay = {opt.lr} x {k} x "
            f"{paper.weight_decay} = {opt.lr * k * paper.weight_decay:.6g} must be at most "
            f"(1 - sqrt(optimizer.momentum))^2 = {condition:.6g} for "
            f"the exponential LR to exist: use budget.k <= {math.floor(bound * 100) / 100:g}")
    total, milestones = mapped_lengths(paper.epochs, paper.get("milestones", []), per_epoch, k)
    if not phases_kept(paper.epochs, paper.get("milestones", []), total, milestones):
        raise UserError(
            f"budget.k={k}: trainer.epochs={paper.epochs} and schedule.milestones="
            f"{list(paper.get('milestones', []))} of {per_epoch} updates become {total} updates "
            f"with milestones {milestones}: a phase of less than one update; use a smaller k")
    horizon = min(paper.epochs, budget.paper_epochs or math.inf)
    steps = max(to_updates(horizon * per_epoch, k), 1)
    if paper.max_steps is not None:  # the command line's limit, in updates of the mini run
        steps = min(steps, paper.max_steps)

    batch_size = budget.batch_size or paper.batch_size
    if budget.get("digits_size") and cfg.dataset.name == "digits":
        # one pixel of the 8x8 digit is the same shift at every size (conf/dataset/digits.yaml)
        cfg.dataset.image_size = budget.digits_size
        cfg.dataset.crop_padding = max(budget.digits_size // 8, 1)
    images = train_images(cfg.dataset)
    if images is None:
        raise UserError(f"budget=mini with dataset={cfg.dataset.name}: the number of training "
                        f"images is not known before reading the data; use budget=paper")
    mini_per_epoch = math.ceil(images / batch_size)

    opt.weight_decay = paper.weight_decay * k
    if "rest_weight_decay" in paper:
        opt.rest_weight_decay = paper.rest_weight_decay * k
    cfg.trainer.batch_size = batch_size
    cfg.trainer.max_steps = steps
    cfg.trainer.epochs = math.ceil(steps / mini_per_epoch)
    if "milestones" in paper:  # epochs of the mini run, fractional where the update is
        cfg.schedule.milestones = [m / mini_per_epoch for m in milestones]
