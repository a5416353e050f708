"""The core stays pure: no I/O, clock, ambient randomness or service imports outside service/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "livcr_exchange"

# Modules the pure core may not import (spec §2: bytes, time and randomness come in as arguments).
FORBIDDEN_IN_CORE = {
    "os",
    "time",
    "datetime",
    "random",
    "secrets",
    "socket",
    "asyncio",
    "aiohttp",
    "structlog",
    "logging",
    "pathlib",
    "io",
    "subprocess",
    "sqlite3",
    "threading",
    "uuid",
    "tempfile",
    "shutil",
    "urllib",
    "http",
    "ssl",
    "select",
    "signal",
    "click",
    "hub",
    "gateway",
    "witness",
    "livcr_cli",
    "prometheus_client",
    "rich",
}
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "__import__"}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, as an absolute dotted name: a relative import is resolved
    against the file's own package (``from ..x import y`` in ``a/b/c.py`` is ``a.x``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            if node.level > len(package):
                raise AssertionError(f"{path}: a relative import above the top package")
            module = ".".join([*base, *([node.module] if node.module else [])])
            # ``from . import x`` imports the module ``x`` of that package
            names = [] if node.module else [f"{module}.{a.name}" for a in node.names]
            modules.update(names or [module])
    return modules


def imported_roots(path: Path) -> set[str]:
    return {module.split(".")[0] for module in imported_modules(path)}


def called_builtins(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


def core_modules() -> list[Path]:
    return [p for p in CORE.rglob("*.py") if "service" not in p.relative_to(CORE).parts]


def test_core_imports_nothing_that_does_io() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(imported_roots(p) & FORBIDDEN_IN_CORE)
        for p in core_modules()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_core_calls_no_io_builtins() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(called_builtins(p) & FORBIDDEN_CALLS)
        for p in core_modules()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_core_modules_are_found() -> None:
    found = {str(p.relative_to(CORE)) for p in core_modules()}
    assert {"keys.py", "directory.py", "envelope/open.py", "conformance.py"} <= found


def test_importing_the_core_loads_no_network_stack() -> None:
    code = (
        "import sys, livcr_exchange, livcr_exchange.envelope, livcr_exchange.conformance;"
        "bad = {'aiohttp', 'structlog', 'socket', 'asyncio', 'sqlite3'} & set(sys.modules);"
        "print(sorted(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_imports_no_service_module() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(
            m for m in imported_modules(p) if m.startswith("livcr_exchange.service")
        )
        for p in core_modules()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_relative_imports_are_resolved() -> None:
    """A relative import counts like an absolute one (the check once saw only level 0)."""
    sample = ROOT / "livcr_exchange" / "envelope" / "open.py"
    modules = imported_modules(sample)
    assert "livcr_exchange.errors" in modules  # written ``from ..errors import ...``
    assert all(not m.startswith(".") for m in modules)


def test_services_never_import_each_other() -> None:
    pairs = [(a, b) for a in ("hub", "gateway", "witness") for b in ("hub", "gateway", "witness")]
    for package, other in ((a, b) for a, b in pairs if a != b):
        for path in (ROOT / package).rglob("*.py") if (ROOT / package).exists() else []:
            assert other not in imported_roots(path), f"{path} imports {other}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycles_in_the_services() -> None:
    """hub.app and hub.routes once imported each other (one of them inside a function)."""
    graph: dict[str, set[str]] = {}
    for package in ("hub", "gateway"):
        for path in (ROOT / package).rglob("*.py"):
            graph[module_name(path)] = imported_modules(path)
    known = set(graph)
    for name, imported in graph.items():  # a name imported from a module counts as the module
        graph[name] = {m if m in known else m.rsplit(".", 1)[0] for m in imported} & known

    def cycle_from(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*path, start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = [c for name in sorted(graph) if (c := cycle_from(name)) and name.count(".")]
    assert cycles == []


def test_nothing_untyped_crosses_between_hub_and_gateway() -> None:
    """The hub's answers are msgspec Structs (livcr_exchange/hub_answers.py), encoded by the hub
    and decoded with their type by the HubClient: no ``Any`` on that path."""
    boundary = (CORE / "hub_answers.py", CORE / "service" / "hub_client.py")
    untyped = [
        f"{path.name}:{node.lineno}"
        for path in boundary
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if (isinstance(node, ast.Name) and node.id == "Any")
        or (isinstance(node, ast.Attribute) and node.attr == "Any")
    ]
    assert untyped == []
