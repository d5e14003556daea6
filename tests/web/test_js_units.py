"""The browser modules' pure parts, tested with Node's own test runner (``node --test``) on ``tests/web/js/*.test.mjs``:
no browser, no server. Node is Debian's ``nodejs`` (installed by ``scripts/test.sh``; ``DIALER_NODE`` overrides it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JS_TESTS = Path(__file__).resolve().parent / "js"


def test_js_units() -> None:
    node = os.environ.get("DIALER_NODE") or shutil.which("node") or shutil.which("nodejs")
    if node is None:
        raise RuntimeError("node is missing: bash scripts/test.sh installs Debian's nodejs")
    files = sorted(str(p.relative_to(ROOT)) for p in JS_TESTS.glob("*.test.mjs"))
    assert files, f"no *.test.mjs in {JS_TESTS}"
    # the files named one by one: node 18 to 22 take that alike (a directory or a glob they do not)
    run = subprocess.run([node, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, f"node --test failed:\n{run.stdout}\n{run.stderr}"
