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


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


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


def test_services_never_import_each_other() -> None:
    pairs = [(a, b) for a in ("hub", "gateway", "witness") for b in ("hub", "gateway", "witness")]
    for package, other in ((a, b) for a, b in pairs if a != b):
        for path in (ROOT / package).rglob("*.py") if (ROOT / package).exists() else []:
            assert other not in imported_roots(path), f"{path} imports {other}"
