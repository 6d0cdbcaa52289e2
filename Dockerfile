# syntax=docker/dockerfile:1
# normlr in a container: uv.lock's runtime packages and the package itself (not editable), no
# dev tools. Build: docker build -t normlr .   Run: README, "Docker".

# The base of both stages: python:3.11-slim-bookworm. Its digest is still to be written here;
# to pin it, on a machine that reaches Docker Hub:
#   docker buildx imagetools inspect python:3.11-slim-bookworm    (the line "Digest: sha256:...")
# and set: ARG BASE=python:3.11-slim-bookworm@sha256:<that digest>
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
# uv makes the environment and stays in this stage. Its version is pyproject.toml's
# [tool.uv] required-version (tests/test_docker.py checks that they agree).
RUN pip install --no-cache-dir uv==0.13.9
# The environment goes to /opt/venv, copied whole into the image, with bytecode compiled once.
# uv's cache is a build cache mount: wheels are downloaded once across builds and stay out of
# the layers (hence copies, not links, into the environment).
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
WORKDIR /build
# The dependencies first, from the lockfile alone, so code changes do not reinstall them.
COPY pyproject.toml uv.lock .python-version ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-project
# Then the package as a wheel (src/ and conf/ into site-packages), built with the lock's own
# setuptools, installed above (torch requires it), instead of an unpinned one.
COPY README.md ./
COPY src ./src
COPY conf ./conf
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable --no-build-isolation

FROM ${BASE}
# The torch wheels carry the CUDA runtime and cuDNN (the nvidia-* packages), so the image needs
# no CUDA base: only the host's NVIDIA driver, which `docker run --gpus all` passes in. W&B's
# settings come from the command line (logger.mode=...) or the environment at run time, never
# from the image. PIP_PYTHON: `pip list` shows the environment's packages, not the base's.
ENV PATH=/opt/venv/bin:$PATH \
    PIP_PYTHON=/opt/venv/bin/python \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NORMLR_DATA=/data
COPY --from=build /opt/venv /opt/venv
COPY --chmod=755 scripts/entrypoint.sh /usr/local/bin/entrypoint
RUN useradd --create-home --uid 1000 --user-group normlr \
    && mkdir -p /app/outputs /data \
    && chown normlr:normlr /app/outputs /data

USER 1000
WORKDIR /app
VOLUME ["/app/outputs", "/data"]
# Overrides go to `python -m src.train`; a command (torchrun, python -m src.figures, ...) runs.
ENTRYPOINT ["entrypoint"]
