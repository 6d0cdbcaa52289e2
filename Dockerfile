# syntax=docker/dockerfile:1
# normlr in a container. Build:  docker build -t normlr .
# Run:  docker run --gpus all -v "$PWD/outputs:/app/outputs" -v "$PWD/data:/data" normlr +experiment=exp_lr
FROM python:3.11-slim-bookworm

# The torch wheels pinned in requirements.lock carry the CUDA runtime and cuDNN (the nvidia-*
# packages), so the image needs no CUDA base: only the host's NVIDIA driver, which
# `docker run --gpus all` passes in. W&B settings come from the environment at run time
# (WANDB_MODE, WANDB_API_KEY, ...), never from the image; offline unless told otherwise.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WANDB_MODE=offline \
    NORMLR_DATA=/data

RUN useradd --create-home --uid 1000 --user-group normlr
WORKDIR /app

# Dependencies first, from the lockfile alone, so code changes do not reinstall them.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

COPY . .
RUN pip install --no-cache-dir --no-deps -e . \
    && mkdir -p /app/outputs /data \
    && chown -R normlr:normlr /app/outputs /data

USER 1000
VOLUME ["/app/outputs", "/data"]
ENTRYPOINT ["python", "-m", "src.train"]
