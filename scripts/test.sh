#!/usr/bin/env bash
# Installs what the tests need and runs them all: ruff, mypy, then pytest (which also runs
# `alembic check` and starts a real embedded PostgreSQL). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv
# the browser tests drive Debian's chromium (tests/web); SIPp plays carriers and phones (tests/telephony/sip); baresip too
# the media plane: rtpengine (userspace, no kernel module), ffmpeg (recordings), espeak-ng and sox (AMD samples)
apt_install chromium fonts-dejavu-core sip-tester baresip-core nodejs
apt_install --no-install-recommends rtpengine-daemon ffmpeg espeak-ng sox
quiet_pip install -e '.[test]'
# the reports' chart libraries (vega, vega-lite, vega-embed) from npm into src/dialer/web/npm/node_modules
command -v npm >/dev/null || apt_install npm
(cd src/dialer/web/npm && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
# an S3-compatible server (s3rver) for the recordings' bucket storage test
(cd tests/media/s3rver && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
echo "== ruff"; .venv/bin/ruff check src tests
echo "== mypy"; .venv/bin/mypy
# two workers (DIALER_TEST_WORKERS; 0 runs in one process): each starts its own embedded PostgreSQL; the tests that
# share the SIP driver's RTP ports and rtpengine run in one worker (tests/conftest.py)
echo "== pytest"; .venv/bin/python -m pytest -p no:cacheprovider -n "${DIALER_TEST_WORKERS:-2}" --dist loadgroup "$@"
