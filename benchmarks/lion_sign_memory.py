"""python -m benchmarks.lion_sign_memory: how long Lion's sign updates remember, on the net.

fig_rotation_optimizers' Lion run (rotation=lion, digits, budget=mini, seed 0; 2002 updates)
trained through the package's train step; over its second half, the autocorrelation
R(k) = mean over coordinates and updates of u_t u_{t-k} of the update u_t = sign(...) of the
scale-invariant group (read back exactly: u_t = sign(a w_t - w_{t+1}), a = 1 - lr wd), against
the arcsine law for gradients uncorrelated across updates (src/theory/equilibrium.py), and the
angle per update that each displacement factor Q = sum_k a^|k| R(k) predicts, against the
measured one. About 8 minutes on 2 cores.
"""

import math

import numpy as np
import torch

from src.config.prepare import prepare
from src.config.resolvers import compose_config
from src.engine.build import build
from src.engine.step import TrainStep
from src.theory.equilibrium import lion_displacement_factor, refined_angle

LAGS = 400  # R(k) for k <= LAGS; beta2 0.99 remembers about 100 updates


def main() -> None:
    cfg = prepare(compose_config(["+experiment=fig_rotation_optimizers", "rotation=lion",
                                  "dataset=digits", "budget=mini", "logger=none", "seed=0",
                                  "trainer.device=cpu"]))
    data, model, optimizer, scheduler = build(cfg, torch.device("cpu"))
    train_step = TrainStep(model.train(), optimizer, scheduler, cfg.trainer, torch.device("cpu"))
    group = next(g for g in optimizer.param_groups if g["name"] == "scale_invariant")
    params, (beta1, beta2) = group["params"], group["betas"]
    a = 1 - group["lr"] * group["weight_decay"]
    total = cfg.trainer.max_steps
    start, n = total // 2, sum(p.numel() for p in params)
    past = torch.zeros(LAGS, n)
    sums, counts = np.zeros(LAGS + 1), np.zeros(LAGS + 1)
    angles, t = [], 0
    for epoch in range(cfg.trainer.epochs):
        for x, y in data.train.epoch(epoch):
            if t == total:
                break
            before = [p.detach().clone() for p in params]
            train_step(x, y, t, epoch)
            if t >= start:
                w0 = torch.cat([b.flatten() for b in before])
                w1 = torch.cat([p.detach().flatten() for p in params])
                u, i, seen = torch.sign(a * w0 - w1), (t - start) % LAGS, min(t - start, LAGS)
                sums[0], counts[0] = sums[0] + float(u @ u), counts[0] + n
                if seen:
                    rows = [(i - k) % LAGS for k in range(1, seen + 1)]
                    sums[1:seen + 1] += (past[rows] @ u).double().numpy()
                    counts[1:seen + 1] += n
                past[i] = u
                for s in group["sets"]:
                    b = torch.cat([before[j].flatten() for j in s])
                    c = torch.cat([params[j].detach().flatten() for j in s])
                    angles.append(math.acos(min(1.0, float(b @ c / (b.norm() * c.norm())))))
            t += 1
    r = sums / counts
    s = (1 - beta1) ** 2 + beta1**2 * (1 - beta2) / (1 + beta2)
    rho1 = beta1 * (1 - beta2) * ((1 - beta1) + beta1 * beta2 / (1 + beta2)) / s
    print(f"Lion lr {group['lr']:g}, wd {group['weight_decay']:g}, betas ({beta1}, {beta2}); "
          f"{n} coordinates, updates {start}-{total - 1}")
    for k in (1, 2, 5, 10, 20, 50, 100, 200, LAGS):
        law = (2 / math.pi) * math.asin(rho1 * beta2 ** (k - 1))
        print(f"  R({k:>3})  measured {r[k]:.4f}   uncorrelated gradients {law:.4f}")
    q = r[0] + 2 * sum(a**k * r[k] for k in range(1, LAGS + 1))
    q_law = lion_displacement_factor(beta1, beta2, a)
    print(f"  Q (lags <= {LAGS})  measured {q:.2f}   uncorrelated gradients {q_law:.2f}")
    print(f"  angle per update: measured {np.mean(angles):.5f}, from the measured Q "
          f"{refined_angle(a, 1.0, q):.5f}, from the law {refined_angle(a, 1.0, q_law):.5f}")


if __name__ == "__main__":
    main()
