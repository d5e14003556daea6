"""The package layout holds (docs/architecture.md): no import cycles, drivers depend only on ``dialer.core``, the
engine never imports the web framework, entry points and benchmarks live in ``dialer.tools``."""

from __future__ import annotations

import ast
import pathlib

import pytest

import dialer

SRC = pathlib.Path(dialer.__file__).parent


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py") if "migrations" not in p.parts}


MODULES = _modules()


def _imports(name: str, *, top_level_only: bool) -> set[str]:
    """Modules of the product that ``name`` imports (``from a import b`` counts ``a.b`` when that is a module)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # also imports under `if TYPE_CHECKING:` and try/except at module level
        nodes = [n for stmt in tree.body for n in ast.walk(stmt)
                 if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


def _cycles() -> list[list[str]]:
    graph = {m: _imports(m, top_level_only=True) for m in MODULES}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append([*stack[stack.index(n):], n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return cycles


def test_no_import_cycles() -> None:
    # package __init__ modules that only document (or re-export their own modules) are not part of a cycle
    assert _cycles() == []


def _pure_media(name: str) -> bool:
    """A module of ``dialer.media`` that imports nothing of the product but ``dialer.core`` (signal processing such as
    the answering-machine detector): a driver may use it."""
    return name.startswith("dialer.media.") and all(
        m.startswith("dialer.core") or m == "dialer.media" for m in _imports(name, top_level_only=False))


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m.startswith("dialer.telephony")))
def test_drivers_import_only_core(name: str) -> None:
    outside = {m for m in _imports(name, top_level_only=False)
               if not m.startswith(("dialer.core", "dialer.telephony")) and m != "dialer" and not _pure_media(m)}
    assert outside == set(), f"{name} imports {sorted(outside)}"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m.startswith(("dialer.core", "dialer.engine"))))
def test_engine_and_core_import_no_web(name: str) -> None:
    text = MODULES[name].read_text(encoding="utf-8")
    tree = ast.parse(text)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    web = {m for m in imported if m.split(".")[0] in {"fastapi", "starlette", "uvicorn", "sse_starlette"}
           or m.startswith(("dialer.web", "dialer.app", "dialer.api", "dialer.tools"))}
    assert web == set(), f"{name} imports {sorted(web)}"


def test_core_imports_nothing_else_of_the_product() -> None:
    for name in (m for m in MODULES if m.startswith("dialer.core")):
        outside = {m for m in _imports(name, top_level_only=False) if not m.startswith("dialer.core")}
        assert outside == set(), f"{name} imports {sorted(outside)}"


def test_benchmarks_and_entry_points_live_in_tools() -> None:
    misplaced = sorted(m for m in MODULES if m.rpartition(".")[2] in {"bench", "demo", "serve", "sample", "simops"}
                       or m.endswith("_bench"))
    assert all(m.startswith("dialer.tools") for m in misplaced), misplaced
