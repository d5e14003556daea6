# Shared by start.sh and test.sh: a virtual environment in .venv on a fresh Debian 12 with python3.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root for: $*" >&2; return 1; fi
}

apt_install() {
  # Installs Debian packages that are missing; apt-get update once per run.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

ensure_venv() {
  local py=${PYTHON:-python3}
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "Python 3.11 or newer is required ($py is $("$py" --version 2>&1))" >&2; exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    if ! "$py" -m venv .venv 2>/dev/null; then
      rm -rf .venv
      apt_install python3-venv
      "$py" -m venv .venv
    fi
    quiet_pip install --upgrade pip
  fi
}

quiet_pip() {
  # pip's "Location ... is ignored" warnings about optional local mirrors are noise.
  .venv/bin/python -m pip "$@" -q 2> >(grep -v '^WARNING: Location' >&2)
}
