"""python -m src.train [+experiment=NAME] [overrides]: the Hydra entry point.

config -> build (data, model, optimizer, schedule) -> loop -> records in the run folder.
"""

import json
import logging
import sys
from functools import partial
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from src.config import resolve_device, validate
from src.data import build_data
from src.engine.loop import fit
from src.engine.toy import run_toy
from src.errors import UserError
from src.models import build_model
from src.optim.optimizer import build_optimizer
from src.optim.schedules import build_schedule
from src.tracking.metadata import run_metadata
from src.tracking.records import Recorder
from src.tracking.wandb_sink import start_wandb

log = logging.getLogger(__name__)
DTYPES = {"fp32": torch.float32, "fp64": torch.float64, "bf16": torch.float32}


def build(cfg: DictConfig, device: torch.device):
    """(data, model, optimizer, schedule) for a validated config, ready for the loop."""
    dtype = DTYPES[cfg.trainer.precision]
    data = build_data(cfg.dataset, batch_size=cfg.trainer.batch_size, seed=cfg.seed,
                      device=device, dtype=dtype)
    torch.manual_seed(cfg.seed)
    try:
        model = build_model(cfg.model, data.num_classes)
    except (TypeError, ValueError) as e:
        raise UserError(f"model.name={cfg.model.name} with model.norm={cfg.model.norm}: {e}"
                        ) from None
    model.to(device=device, dtype=dtype)
    optimizer = build_optimizer(model, cfg.optimizer, input_shape=data.input_shape,
                                scale_invariant=cfg.model.scale_invariant)
    try:
        schedule = build_schedule(cfg.schedule, cfg.optimizer, len(data.train),
                                  cfg.trainer.epochs * len(data.train))
    except ValueError as e:  # no real alpha, or no exact twin for this schedule
        raise UserError(f"schedule={cfg.schedule.name} with optimizer={dict(cfg.optimizer)}: {e}"
                        ) from None
    return data, model, optimizer, schedule


def train(cfg: DictConfig, run_dir: Path) -> dict:
    validate(cfg)
    if cfg.task == "train":
        device = resolve_device(cfg.trainer.device)
        data, model, optimizer, schedule = build(cfg, device)
        log.info("%s on %s (%s): %d train / %d test images, %d steps per epoch, run folder %s",
                 cfg.model.name, cfg.dataset.name, device, data.train.num_samples,
                 data.test.num_samples, len(data.train), run_dir)
        run = partial(fit, model, optimizer, schedule, data, cfg=cfg.trainer, device=device)
    else:
        run = partial(run_toy, cfg.toy)

    run_dir.mkdir(parents=True, exist_ok=True)
    metadata = run_metadata()
    (run_dir / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    sinks = []
    if cfg.logger.kind == "wandb":
        config = {**OmegaConf.to_container(cfg, resolve=True), "metadata": metadata}
        sinks = [sink for sink in [start_wandb(cfg.logger, config, run_dir)] if sink]
    recorder = Recorder(run_dir, sinks)
    try:
        summary = run(recorder=recorder)
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        summary = {"status": status, "error": repr(e)}
        raise
    finally:
        recorder.finish(summary)
    log.info("%s after %d steps: %s", summary["status"], summary.get("steps", 0),
             ", ".join(f"{k}={v:.4g}" for k, v in summary.items()
                       if k.startswith("test/") or k.endswith("/error")))
    return summary


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    try:
        summary = train(cfg, Path(HydraConfig.get().runtime.output_dir))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    return summary.get("test/acc")  # the value a Hydra sweeper would optimise


if __name__ == "__main__":
    main()
