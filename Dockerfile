# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target server  -t rlvr-reward-server .   (no torch: the service and verifiers)
#   docker build --target trainer -t rlvr-grpo-trainer .    (adds torch + transformers for a GPU host)
# No secrets are baked in: database URL, TLS files and API keys come from the environment
# or mounted files at run time.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY reward_server ./reward_server
COPY verifiers ./verifiers
COPY trainer_client ./trainer_client
COPY rlvr_integrations ./rlvr_integrations
RUN useradd --system --uid 10001 --home /app rewards

FROM base AS server
RUN pip install ".[postgres]"
USER rewards
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["reward-server", "health"]
ENTRYPOINT ["reward-server"]
CMD ["--host", "0.0.0.0", "--port", "50051"]

FROM base AS trainer
# TORCH_SPEC picks the build, e.g. torch==2.13.0 (CUDA wheels from PyPI on x86_64).
ARG TORCH_SPEC=torch==2.13.0
RUN pip install "$TORCH_SPEC" && pip install ".[train]"
USER rewards
ENTRYPOINT ["grpo-train"]
