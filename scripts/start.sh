#!/usr/bin/env bash
# Installs what is needed, builds the model and the index, and starts the web chat.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python app.py "$@"
