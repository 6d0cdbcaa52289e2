"""The config floor, above everything else: what Hydra needs before it composes (resolvers.py:
the config folder, resolvers, grid folder names), its callbacks (callbacks.py), the check of
every key (checks.py), budget=mini's mapping (budget.py) and prepare(cfg) (prepare.py), the one
step from a composed config to the config a run computes with. Nothing in src/engine, data,
models, optim, theory or tracking imports it. Empty here, so that resolvers.py stays light
for `--help`."""
