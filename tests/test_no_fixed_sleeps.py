"""No test and no example waits by sleeping a fixed time.

A fixed pause is a guess about how fast the machine is: too short on a loaded one, too long on
an idle one. Every constant ``sleep`` in tests/ and examples/ must be the poll interval of a
loop bounded by a deadline (or by a count), or be listed in ALLOWED with the reason it is not a
wait: a yield to the event loop, a deliberately slow attacker, a backoff under test.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = [ROOT / "tests", ROOT / "examples"]
BOUNDS = ("deadline", "monotonic()", "timeout")
Loop = ast.While | ast.For | ast.AsyncFor

# (path relative to the repository, enclosing function) -> why that sleep is not a wait.
ALLOWED: dict[tuple[str, str], str] = {
    ("tests/test_witness_durability.py", "test_kill_9_then_only_consistent_extensions"): (
        "sleep(0) yields once so that the in-flight request is on the wire when the witness is "
        "killed; it waits for no event"
    ),
}


def _is_sleep(node: ast.Call) -> bool:
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    return name == "sleep"


def _is_constant(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp | ast.BinOp):
        return all(_is_constant(n) for n in ast.iter_child_nodes(node) if isinstance(n, ast.expr))
    return isinstance(node, ast.Name) and node.id.isupper()  # a module constant


def _bounded(loop: Loop, source: str) -> bool:
    """A poll loop: it checks a deadline, or runs a fixed number of times."""
    if isinstance(loop.iter if isinstance(loop, ast.For) else None, ast.Call):
        return getattr(loop.iter.func, "id", "") == "range"  # type: ignore[union-attr]
    text = ast.get_source_segment(source, loop) or ""
    return any(bound in text for bound in BOUNDS)


def fixed_sleeps(path: Path) -> list[tuple[str, int, str]]:
    """(function, line, code) of each constant sleep in ``path`` that is no bounded poll."""
    source = path.read_text()
    tree = ast.parse(source)
    found = []

    def visit(
        node: ast.AST, function: str, loops: list[ast.While | ast.For | ast.AsyncFor]
    ) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function, loops = node.name, []
        if isinstance(node, ast.While | ast.For | ast.AsyncFor):
            loops = [*loops, node]
        if (
            isinstance(node, ast.Call)
            and _is_sleep(node)
            and node.args
            and _is_constant(node.args[0])
            and not any(_bounded(loop, source) for loop in loops)
        ):
            found.append((function, node.lineno, ast.get_source_segment(source, node) or ""))
        for child in ast.iter_child_nodes(node):
            visit(child, function, loops)

    visit(tree, "<module>", [])
    return found


def test_no_fixed_sleep_waits() -> None:
    unexplained = []
    used = set()
    for folder in SCANNED:
        for path in sorted(folder.rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for function, line, code in fixed_sleeps(path):
                if (relative, function) in ALLOWED:
                    used.add((relative, function))
                else:
                    unexplained.append(f"{relative}:{line} in {function}: {code}")
    assert unexplained == [], "wait on a condition with a deadline (tests/waiting.py)"
    assert used == set(ALLOWED), "an allowed sleep is gone: drop it from ALLOWED"


def test_the_scan_finds_a_fixed_pause(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import time, asyncio\n"
        "def waits():\n    start()\n    time.sleep(0.5)\n"
        "async def polls(deadline):\n"
        "    while not ready():\n        assert time.monotonic() < deadline\n"
        "        await asyncio.sleep(0.05)\n"
        "def backs_off(delay):\n    time.sleep(delay)\n"
        "def spins():\n    for _ in items():\n        time.sleep(1)\n"
    )
    assert fixed_sleeps(sample) == [("waits", 4, "time.sleep(0.5)"), ("spins", 13, "time.sleep(1)")]
