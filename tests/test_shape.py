"""The services stay in short pieces: no module of gateway/ over 400 lines, and no function of
gateway/ or hub/ over 50 (a function that long does several things; split it)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def python_files(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            # From ``def`` to the last line: decorators (click's options) are not its body.
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_gateway_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in python_files("gateway")
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_of_the_services_is_over_50_lines() -> None:
    assert [f for p in python_files("gateway", "hub") for f in long_functions(p)] == []


def test_the_check_sees_a_long_function() -> None:
    sample = ROOT / "tests" / "_shape_sample.py"
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    sample.write_text(f"def long() -> None:\n{body}\n")
    try:
        assert [f.split(" ")[1] for f in long_functions(sample)] == ["long"]
    finally:
        sample.unlink()
