#!/usr/bin/env bash
# Installs what the product needs (a virtual environment with its Python packages) and starts it.
# With nothing configured it uses an embedded PostgreSQL in ./var and creates the first administrator.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv
quiet_pip install -e .
exec .venv/bin/dialer run "$@"
