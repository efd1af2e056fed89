# Two images from one file:
#   docker build --target server  -t rlvr-reward-server .   (no torch: the service and verifiers)
#   docker build --target trainer -t rlvr-grpo-trainer .    (adds torch + transformers for a GPU host)
# No secrets are baked in: database URL, TLS files and API keys come from the environment
# or mounted files at run time.
#
# Base image: PYTHON_IMAGE, any Debian/Ubuntu image with python3 (python3-venv on Debian's
# own python). scripts/docker-base-images.sh builds rlvr-python:bookworm from debootstrap
# (no registry) and a wheelhouse in build/wheels; with wheels there, pip installs from them
# alone (--no-index), else from the package index (PIP_INDEX_URL as a build arg).
# Works with the classic builder and BuildKit alike (no registry-fetched syntax frontend).
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LANG=C.UTF-8 PATH=/opt/venv/bin:$PATH
# The code verifier's sandbox: bubblewrap and util-linux's setpriv/prlimit. The debootstrap
# base has them; a stock image gets them from its apt sources.
RUN pkgs=""; command -v bwrap >/dev/null || pkgs="bubblewrap"; \
    command -v prlimit >/dev/null || pkgs="$pkgs util-linux"; \
    python3 -c "import ensurepip" 2>/dev/null || pkgs="$pkgs python3-venv"; \
    if [ -n "$pkgs" ]; then apt-get update && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends $pkgs && rm -rf /var/lib/apt/lists/*; fi \
 && python3 -m venv /opt/venv && useradd --system --uid 10001 --home-dir /app rewards
WORKDIR /app

# Each image is installed in a build stage of its own and only its /opt/venv is copied on,
# so no wheel stays in an image and the server never sees the trainer's wheels:
# build/wheels holds the server's, build/wheels-trainer (`--with-trainer`) torch and
# '.[train]'. build/wheel[s]: the glob lets the build go on without a wheelhouse
# (pyproject.toml keeps the source list non-empty); then pip uses the package index.
FROM base AS source
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY reward_server ./reward_server
COPY rewardctl ./rewardctl
COPY rewards_client ./rewards_client
COPY verifiers ./verifiers
COPY trainer_client ./trainer_client
COPY rlvr_integrations ./rlvr_integrations

FROM source AS server-build
COPY pyproject.toml build/wheel[s] /wheels/
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
RUN if ls /wheels/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /wheels; fi; \
    pip install "$@" ".[postgres]"

FROM base AS server
COPY --from=server-build /opt/venv /opt/venv
# Every `reward-server` run as root steps down to `rewards` first (docker/reward-server.sh):
# compose runs this service as root for one mount, see docker-compose.yml.
COPY docker/reward-server.sh /opt/rlvr/bin/reward-server
ENV PATH=/opt/rlvr/bin:$PATH
USER rewards
EXPOSE 50051 8080 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["reward-server", "health"]
ENTRYPOINT ["reward-server"]
CMD ["--host", "0.0.0.0", "--port", "50051"]

FROM source AS trainer-build
COPY pyproject.toml build/wheel[s] /wheels/
COPY pyproject.toml build/wheels-traine[r] /wheels-trainer/
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
# TORCH_SPEC picks the build, e.g. torch==2.13.0 (CUDA wheels from PyPI on x86_64). The
# wheelhouse carries torch and '.[train]' only when made with
# `scripts/docker-base-images.sh --with-trainer`; else this stage needs the package index.
ARG TORCH_SPEC=torch==2.13.0
RUN if ls /wheels-trainer/*.whl >/dev/null 2>&1; then \
      set -- --no-index --find-links /wheels --find-links /wheels-trainer; fi; \
    pip install "$@" "$TORCH_SPEC" && pip install "$@" ".[train]"

FROM base AS trainer
COPY --from=trainer-build /opt/venv /opt/venv
RUN mkdir -p /app/checkpoints && chown rewards /app/checkpoints
# The model comes from a mounted directory (compose: MODEL_DIR -> /models/policy), never a
# hub; caches go to /tmp (the user's home /app is read-only to it).
ENV HF_HOME=/tmp/huggingface HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
USER rewards
ENTRYPOINT ["grpo-train"]
