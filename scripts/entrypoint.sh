#!/bin/sh
# The image's entry point. Hydra overrides and options (`+experiment=exp_lr`, `-m ...`,
# `--cfg job`), or nothing, go to `python -m src.train`; anything else is a command, run as
# given: `torchrun --nproc_per_node=8 -m src.train ...`, `python -m src.figures ...`, `bash`.
# exec: the program takes this process's place, so `docker stop`'s SIGTERM reaches it.
set -eu
case "${1-}" in
  "" | *=* | -* | ~*) exec python -m src.train "$@" ;;
  *) exec "$@" ;;
esac
