#!/usr/bin/env bash
# Installs what the product needs (a virtual environment with its Python packages) and starts it.
# With nothing configured (no DIALER_DATABASE_URL) it starts the demo: embedded PostgreSQL in ./var, a sample
# campaign, simulated operators and telephony in real time, and prints the logins. Otherwise `dialer run`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
echo "[1/3] Python environment (.venv)"
ensure_venv
echo "[2/3] Python packages (the first time takes a minute or two)"
progress_pip install -e .
if [ -z "${DIALER_DATABASE_URL:-}" ]; then
  echo "[3/3] Starting the demo: embedded PostgreSQL in ./var, sample data, simulated operators"
  echo "      (Ctrl+C stops the demo; the database server keeps running: .venv/bin/dialer db stop)"
  exec .venv/bin/dialer demo "$@"
fi
echo "[3/3] Starting: dialer run"
exec .venv/bin/dialer run "$@"
