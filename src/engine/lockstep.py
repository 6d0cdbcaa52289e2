"""Two or more prepared configs trained side by side on the same batches, from the same init,
by the train step that trains every run: a process with weight decay (`reference`) and its
twins. After every update, for each twin: how far its weights are from c_t times the
reference's, its outputs on a fixed batch from the reference's, and its training loss from the
reference's. src/verify.py reports the worst of these; task=twin_gap records every update
(fig_twin_divergence)."""

import torch
from omegaconf import open_dict

from src.engine.build import build
from src.engine.step import TrainStep, autocast


def deviations(runs: dict, probe, step: int, device, precision: str, records: dict) -> dict:
    """name -> {weights, outputs, loss} of each twin at update `step` (records: the update's
    training records, with train/loss, or empty)."""
    outputs, weights = {}, {}
    for name, train_step in runs.items():
        si = train_step.guard.group["params"]
        # the weights of the process, not of their renormalised representation
        weights[name] = torch.cat([p.detach().flatten() for p in si]) / train_step.guard.scale
        with torch.no_grad(), autocast(device, precision):
            outputs[name] = train_step.model(probe).double()
    found = {}
    for name in runs:
        if name == "reference":
            continue
        scaled = runs[name].scheduler.table.groups["scale_invariant"].scale[step] * weights[
            "reference"]
        row = {"weights": ((weights[name] - scaled).norm() / scaled.norm()).item(),
               "outputs": (outputs[name] - outputs["reference"]).abs().max().item()}
        if records.get(name) and records.get("reference"):
            loss, reference = records[name]["train/loss"], records["reference"]["train/loss"]
            row["loss"] = abs(loss - reference) / abs(reference)
        found[name] = row
    return found


def lockstep(configs: dict, device, probe_size: int, on_step=None) -> int:
    """Train the configs (name -> prepared config, one named `reference`) in lockstep for the
    reference's epochs (or trainer.max_steps); on_step(step, epoch, deviations) after each
    update (epoch: the epochs done after it). Returns the number of updates."""
    runs, data = {}, None
    for name, cfg in configs.items():
        data, model, optimizer, scheduler = build(cfg, device)
        runs[name] = TrainStep(model.train(), optimizer, scheduler, cfg.trainer, device)
    trainer = configs["reference"].trainer
    total = min(trainer.epochs * len(data.train), trainer.max_steps or float("inf"))
    probe = next(data.test.epoch(0))[0][:probe_size]
    step = 0
    try:
        for epoch in range(trainer.epochs):
            for i, (x, y) in enumerate(data.train.epoch(epoch)):
                if step >= total:
                    return step
                records = {name: train_step(x, y, step, epoch + i / len(data.train))
                           for name, train_step in runs.items()}
                found = deviations(runs, probe, step, device, trainer.precision, records)
                if on_step:
                    on_step(step, epoch + (i + 1) / len(data.train), found)
                step += 1
    finally:
        for train_step in runs.values():
            train_step.close()
    return step


# the plain schedule each twin schedule imitates (equivalent: its schedule.base)
REFERENCE_OF = {"exp": "constant", "texp": "step"}


def reference_config(cfg):
    """The twin's config with the plain schedule its process runs with weight decay."""
    name = cfg.schedule.name
    base = cfg.schedule.base if name == "equivalent" else REFERENCE_OF[name]
    reference = cfg.copy()
    with open_dict(reference):
        reference.schedule.name = base
    return reference


def run_twin_gap(cfg, device, recorder) -> dict:
    """task=twin_gap: the twin schedule of cfg beside the process it imitates, on the same
    batches from the same init; a record per update with the relative gap of their training
    losses (gap/loss), of their weights (gap/weights, c_t included) and the largest gap of
    their outputs on a fixed batch (gap/outputs)."""
    def record(step: int, epoch: float, found: dict) -> None:
        row = found["twin"]
        recorder.log({"step": step, "epoch": epoch, "gap/loss": row["loss"],
                      "gap/weights": row["weights"], "gap/outputs": row["outputs"]})
    steps = lockstep({"reference": reference_config(cfg), "twin": cfg}, device, PROBE_SIZE,
                     record)
    return {"status": "completed", "steps": steps}


PROBE_SIZE = 32  # test images whose outputs are compared
