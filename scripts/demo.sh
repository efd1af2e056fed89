#!/usr/bin/env bash
# The main job on the embedded defaults: set up, start a reward server (SQLite), train a
# small local model with GRPO on reasoning-gym problems, print held-out accuracy before/after.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/grpo-train demo "$@"
