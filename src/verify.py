"""python -m src.verify [overrides]: paper A's equivalences, checked on a network in lockstep.

For each optimizer (verify.optimizers: SGD, AdamW, Lion) and each pair a scale-invariant network
is trained from the same init on the same batches: with weight decay under a plain schedule,
and as its no-weight-decay twin, corrected (exact) and uncorrected (SGD: without the momentum
correction; AdamW and Lion: the naive twin, which keeps the betas), each by the train step that
trains every run (src/engine/step.py: the trainer's precision, channels_last and overflow
guard apply; exact only in float64).
After every update it records
  max_rel_param_dev   ||theta~_t - c_t theta_t|| / ||c_t theta_t||
  max_abs_output_dev  max |f~_t(x) - f_t(x)| on a fixed batch (train-mode norms)
and writes equivalence.json in the run folder.
"""

import json
import logging
import sys
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from src.config.prepare import prepare
from src.config.resolvers import CONF  # and the config's resolvers, before Hydra composes
from src.engine.lockstep import lockstep as engine_lockstep
from src.errors import UserError

log = logging.getLogger(__name__)

# pair -> (the reference's schedule, its twin's schedule), as config overrides
PAIRS = {
    "exp_vs_constant_wd": ({"name": "constant"}, {"name": "exp"}),
    "texp_vs_step_decay": ({"name": "step"}, {"name": "texp"}),
    "exact_vs_cosine_wd": ({"name": "cosine"}, {"name": "equivalent", "base": "cosine"}),
}


def with_schedule(cfg: DictConfig, schedule: dict) -> DictConfig:
    cfg = cfg.copy()
    common = {"milestones": cfg.verify.milestones, "factor": 0.1, "final_ratio": 0.0}
    cfg.schedule = OmegaConf.create({**common, **schedule})
    return prepare(cfg)


def lockstep(cfg: DictConfig, reference: dict, twins: dict[str, dict], device
             ) -> tuple[dict, int]:
    """The worst deviation of each twin over the run (src/engine/lockstep.py), and the number
    of updates."""
    configs = {name: with_schedule(cfg, schedule)
               for name, schedule in {"reference": reference, **twins}.items()}
    worst = {name: {"max_rel_param_dev": 0.0, "max_abs_output_dev": 0.0} for name in twins}

    def keep_worst(step: int, epoch: float, found: dict) -> None:
        for name, row in found.items():
            record = worst[name]
            record["max_rel_param_dev"] = max(record["max_rel_param_dev"], row["weights"])
            record["max_abs_output_dev"] = max(record["max_abs_output_dev"], row["outputs"])
    steps = engine_lockstep(configs, device, cfg.verify.probe_size, keep_worst)
    return worst, steps


def with_optimizer(cfg: DictConfig, name: str) -> DictConfig:
    """cfg with optimizer `name`: the composed one if it is that, else the group's defaults."""
    if cfg.optimizer.name == name:
        return cfg
    cfg = cfg.copy()
    cfg.optimizer = OmegaConf.load(CONF / "optimizer" / f"{name}.yaml")
    return cfg


def verify(cfg: DictConfig, run_dir: Path) -> dict:
    """Each optimizer of verify.optimizers, each pair: the twin with its correction (SGD:
    the momentum correction; AdamW, Lion: the exact twin's per-update betas) and without it
    (SGD: plain ExpLR/TEXP; AdamW, Lion: the naive twin, which keeps the betas)."""
    prepare(cfg)
    device = torch.device(cfg.trainer.device)
    result = {"precision": cfg.trainer.precision, "norm_eps": cfg.model.norm_eps,
              "model": cfg.model.name, "norm": cfg.model.norm, "dataset": cfg.dataset.name,
              "steps": None, "pairs": {}}
    for optimizer in cfg.verify.optimizers:
        opt_cfg = prepare(with_optimizer(cfg, optimizer))
        for pair, (reference, twin) in PAIRS.items():
            log.info("%s, %s ...", optimizer, pair)
            twins = {"corrected": {**twin, "momentum_correction": True},
                     "uncorrected": {**twin, "momentum_correction": False}}
            result["pairs"][f"{optimizer}/{pair}"], result["steps"] = lockstep(
                opt_cfg, reference, twins, device)
    (run_dir / "equivalence.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    return result


def table(result: dict) -> str:
    lines = [f"{'optimizer/pair':<28} {'twin':<12} {'max rel param dev':>18} "
             f"{'max abs output dev':>19}"]
    for pair, twins in result["pairs"].items():
        for name, dev in twins.items():
            lines.append(f"{pair:<28} {name:<12} {dev['max_rel_param_dev']:>18.3e} "
                         f"{dev['max_abs_output_dev']:>19.3e}")
    head = (f"{result['model']} ({result['norm']}) on {result['dataset']}, {result['steps']} "
            f"steps, {result['precision']}, norm eps {result['norm_eps'] or 'default'}")
    return "\n".join([head, *lines])


@hydra.main(config_path="../conf", config_name="verify", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        verify(cfg, Path(HydraConfig.get().runtime.output_dir))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
