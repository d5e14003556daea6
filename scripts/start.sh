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
# the reports' chart libraries from npm (src/dialer/web/npm) and the PDF exports' fonts; without them the reports
# still work (tables only, and a message on the page)
{ command -v npm >/dev/null || apt_install nodejs npm; } && (cd src/dialer/web/npm && npm ci --no-audit --no-fund \
  --ignore-scripts --loglevel=error) || echo "      npm ci failed: the reports will show their tables without charts" >&2
apt_install fonts-dejavu-core || echo "      fonts-dejavu-core missing: PDF exports of the reports will fail" >&2
if [ -z "${DIALER_DATABASE_URL:-}" ]; then
  echo "[3/3] Starting the demo: embedded PostgreSQL in ./var, sample data, simulated operators"
  echo "      (Ctrl+C stops the demo; the database server keeps running: .venv/bin/dialer db stop)"
  exec .venv/bin/dialer demo "$@"
fi
echo "[3/3] Starting: dialer run (the bundled numbering snapshot is loaded first if the phone-code table is empty)"
.venv/bin/dialer numbering-bundled --if-empty
exec .venv/bin/dialer run "$@"
