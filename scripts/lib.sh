# Shared by start.sh and test.sh: a virtual environment in .venv on a fresh Debian 12 with python3.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root for: $*" >&2; return 1; fi
}

apt_install() {
  # Installs Debian packages that are missing; apt-get update once per run. apt and dpkg print hundreds of lines
  # ("Selecting previously unselected package", "Setting up"): they go to a log, and only warnings and errors are
  # shown -- the whole log when it fails.
  # Options (e.g. --no-install-recommends) go to apt-get install.
  local missing=() opts=() log
  for pkg in "$@"; do
    if [[ $pkg == --* ]]; then opts+=("$pkg"); continue; fi
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log=$(mktemp "${TMPDIR:-/tmp}/dialer-apt.XXXXXX")
  echo "Installing Debian packages: ${missing[*]} ..."
  if ! { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${opts[@]}" "${missing[@]}"; } >"$log" 2>&1; then
    echo "apt-get failed:" >&2
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  grep -E '^(E|W|Err):' "$log" >&2 || true
  rm -f "$log"
}

ensure_venv() {
  local py=${PYTHON:-python3}
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "Python 3.11 or newer is required ($py is $("$py" --version 2>&1))" >&2; exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "Creating the virtual environment .venv ..."
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

progress_pip() {
  # pip with one line per package it collects, so a first install (a minute or two) shows it is moving; warnings
  # about optional local mirrors dropped, errors shown.
  .venv/bin/python -m pip "$@" --progress-bar off 2> >(grep -v '^WARNING: Location' >&2) |
    while IFS= read -r line; do
      case "$line" in
        Collecting*) echo "  ${line#Collecting }" ;;
        "Successfully installed"*) echo "  installed:${line#Successfully installed}" | cut -c1-300 ;;
      esac
    done
}
