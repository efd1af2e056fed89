#!/usr/bin/env bash
# Set up and run the whole test suite (real gRPC servers, SQLite files, PostgreSQL on 127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
