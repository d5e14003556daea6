"""The product works from a plain install: ``pip install .`` without the ``test`` extra, into a fresh venv.

Every ``dialer ...`` command the README names (in code blocks and inline code, so a new command there is covered
without touching this test) answers ``--help``, as does every ``dialer bench`` subcommand, and every module of the
installed package imports with the runtime dependencies alone (a command's ``--help`` does not import what the
command needs when it runs, e.g. httpx for ``dialer bench realtime``).
"""

from __future__ import annotations

import os
import re
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

pytestmark = pytest.mark.slow

_FENCED = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
_PREFIXES = (".venv/bin/dialer ", "dialer ")
#: A command word: lower case, digits and dashes (``import-numbering``); alternatives joined by ``|``.
_WORD = re.compile(r"[a-z][a-z0-9-]*(?:\|[a-z][a-z0-9-]*)*")


def readme_commands(text: str) -> list[tuple[str, ...]]:
    """The ``dialer`` subcommands the README shows: ``dialer user create LOGIN --role admin`` → ("user", "create").

    Words up to the first option or placeholder are the command; ``list|start`` (``list\\|start`` in a table)
    gives one command per alternative.
    """
    snippets: list[str] = []
    for block in _FENCED.findall(text):
        snippets.extend(block.splitlines())
    snippets.extend(_INLINE.findall(_FENCED.sub("", text)))
    found: dict[tuple[str, ...], None] = {}
    for snippet in snippets:
        line = snippet.strip().replace("\\|", "|")
        prefix = next((p for p in _PREFIXES if line.startswith(p)), None)
        if prefix is None:
            continue
        variants: list[tuple[str, ...]] = [()]
        for token in line[len(prefix):].split():
            if not _WORD.fullmatch(token):
                break
            variants = [(*v, alt) for v in variants for alt in token.split("|")]
        for words in variants:
            if words:
                found[words] = None
    return list(found)


def test_readme_commands_are_found() -> None:
    """The parser itself, on the README's own forms."""
    sample = ("```\nbash scripts/start.sh\n.venv/bin/dialer migrate\n```\n"
              "| `dialer user create LOGIN --role admin [--password P]` | x |\n"
              "| `dialer campaign list\\|start ID` | x |\n"
              "| `dialer bench import --rows N --json` | `dialer openapi [--output FILE]` | the `dialer` command\n")
    assert readme_commands(sample) == [("migrate",), ("user", "create"), ("campaign", "list"), ("campaign", "start"),
                                       ("bench", "import"), ("openapi",)]
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert {("run",), ("import",), ("bench", "realtime"), ("campaign", "acknowledge")} <= set(commands)


def _clean_env() -> dict[str, str]:
    """This environment without what would point a subprocess at the test venv."""
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the product installed from the repository root: no ``-e``, no extras."""
    home = tmp_path_factory.mktemp("plain-install") / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    done = subprocess.run([str(home / "bin" / "python"), "-m", "pip", "install", "--no-input", "--quiet", str(ROOT)],
                          cwd=home.parent, env=_clean_env(), capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return home


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = _clean_env()
    env["DIALER_DATA_DIR"] = str(home.parent / "var")  # nothing should be written; if it were, not into the repo
    return subprocess.run(args, cwd=home.parent, env=env, capture_output=True, text=True, timeout=300)


def _bench_commands(home: Path) -> list[str]:
    listed = _run(home, str(home / "bin" / "python"), "-c",
                  "import typer.main; from dialer.cli import app; "
                  "bench = typer.main.get_command(app).commands['bench']; print(' '.join(sorted(bench.commands)))")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


def test_the_install_is_not_the_repository(plain_venv: Path) -> None:
    where = _run(plain_venv, str(plain_venv / "bin" / "python"), "-c", "import dialer; print(dialer.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(plain_venv), where.stdout
    assert not Path(where.stdout.strip()).is_relative_to(ROOT)


def test_every_readme_command_and_bench_answers_help(plain_venv: Path) -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    bench = _bench_commands(plain_venv)
    assert {"import", "pacing", "engine", "realtime", "sip"} <= set(bench)
    wanted = [("--help",), *[(*c, "--help") for c in commands], ("bench", "--help"),
              *[("bench", b, "--help") for b in bench]]
    failures = []
    for args in dict.fromkeys(wanted):
        done = _run(plain_venv, str(plain_venv / "bin" / "dialer"), *args)
        if done.returncode != 0 or "Usage" not in done.stdout:
            failures.append(f"dialer {' '.join(args)} → {done.returncode}\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    assert not failures, "\n\n".join(failures)


def test_every_module_imports_with_the_runtime_dependencies(plain_venv: Path) -> None:
    """What ``--help`` does not show: a module importing a package that only the test extra installs."""
    script = (
        "import importlib, pathlib, sys, dialer\n"
        "base = pathlib.Path(dialer.__file__).parent\n"
        "bad = []\n"
        "for path in sorted(base.rglob('*.py')):\n"
        "    parts = path.relative_to(base.parent).with_suffix('').parts\n"
        "    if 'migrations' in parts:\n"  # Alembic runs these itself
        "        continue\n"
        "    name = '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as err:\n"
        "        bad.append(f'{name}: {err!r}')\n"
        "print('\\n'.join(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = _run(plain_venv, str(plain_venv / "bin" / "python"), "-c", script)
    assert done.returncode == 0, done.stdout + done.stderr
