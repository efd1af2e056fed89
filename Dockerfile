# The reward service image (no trainer dependencies: no torch).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY reward_server ./reward_server
COPY verifiers ./verifiers
COPY trainer_client ./trainer_client
RUN pip install --no-cache-dir ".[postgres]" && useradd --system --uid 10001 rewards
USER rewards
EXPOSE 50051
ENTRYPOINT ["reward-server"]
CMD ["--host", "0.0.0.0", "--port", "50051"]
