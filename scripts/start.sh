#!/usr/bin/env bash
# Installs what the product needs (a virtual environment with its Python packages) and starts it.
# With nothing configured (no DIALER_DATABASE_URL) it starts the demo: embedded PostgreSQL in ./var, a sample
# campaign, simulated operators and telephony in real time, and prints the logins. Otherwise `dialer run`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv
quiet_pip install -e .
if [ -z "${DIALER_DATABASE_URL:-}" ]; then
  exec .venv/bin/dialer demo "$@"
fi
exec .venv/bin/dialer run "$@"
