"""An independent check that no hidden count of a published table can be derived from it.

For each hidden position it builds a second table that shows exactly the same published numbers,
adds up in every row, column and total, and differs at that position: so no sequence of
subtractions from the published numbers can find it. Tables with several columns are seen as a
bipartite graph (rows and the totals row against columns and the totals column; each position
an edge); an alternating +1/-1 around a cycle of hidden edges keeps every sum. One-column tables
move one unit between two hidden positions of the one sum.
"""

from __future__ import annotations

import itertools
from collections import deque

from livcr_exchange.oversight.model import Table

Grid = list[list[int]]


def full_grid(table: Table, hidden_values: dict[tuple[int, int], int]) -> Grid:
    """The (R+1) x (C+1) grid with totals in the last row and column; hidden from the map."""
    rows, columns = len(table.rows), len(table.columns)
    shown: list[list[object]] = [[*table.cells[r], table.row_totals[r]] for r in range(rows)]
    shown.append([*table.column_totals, table.total])
    return [
        [
            hidden_values[(r, c)] if isinstance(shown[r][c], str) else int(shown[r][c])  # type: ignore[call-overload]
            for c in range(columns + 1)
        ]
        for r in range(rows + 1)
    ]


def adds_up(grid: Grid) -> bool:
    rows, columns = len(grid) - 1, len(grid[0]) - 1
    return all(sum(grid[r][:columns]) == grid[r][columns] for r in range(rows + 1)) and all(
        sum(grid[r][c] for r in range(rows)) == grid[rows][c] for c in range(columns + 1)
    )


def alternative_for(
    hidden: set[tuple[int, int]], target: tuple[int, int], rows: int, columns: int
) -> dict[tuple[int, int], int] | None:
    """A change of hidden positions that keeps every sum and moves ``target``; None if none."""
    # Nodes: ("r", i) for grid rows 0..rows, ("c", j) for grid columns 0..columns.
    start, goal = ("r", target[0]), ("c", target[1])
    edges = {(("r", r), ("c", c)) for r, c in hidden if (r, c) != target}
    neighbours: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for a, b in edges:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    came: dict[tuple[str, int], tuple[str, int] | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in neighbours.get(node, []):
            if nxt not in came:
                came[nxt] = node
                queue.append(nxt)
    if goal not in came:
        return None
    path = [goal]
    while came[path[-1]] is not None:
        path.append(came[path[-1]])  # type: ignore[arg-type]
    path.reverse()  # start (row) ... goal (column)
    change: dict[tuple[int, int], int] = {target: 1}
    sign = -1
    for a, b in itertools.pairwise(path):
        row, column = (a[1], b[1]) if a[0] == "r" else (b[1], a[1])
        change[(row, column)] = change.get((row, column), 0) + sign
        sign = -sign
    # Grid totals carry the opposite sign of the cells they sum (a row: cells - total = 0).
    return {
        (r, c): d * (-1 if (r == rows) != (c == columns) else 1) for (r, c), d in change.items()
    }


def assert_nothing_derivable(table: Table, exact: dict[tuple[int, int], int]) -> None:
    """``exact``: the true values of the hidden grid positions (totals at index R or C)."""
    rows, columns = len(table.rows), len(table.columns)
    if columns == 1:
        shown = [row[0] for row in table.cells] + [table.total]
        hidden = [i for i, value in enumerate(shown) if isinstance(value, str)]
        for target in hidden:
            assert len(hidden) >= 2, f"{table.id}: position {target} alone in its sum"
        return
    grid_hidden = set(exact)
    base = full_grid(table, exact)
    assert adds_up(base), f"{table.id}: the exact values do not add up"
    for target in grid_hidden:
        change = alternative_for(grid_hidden, target, rows, columns)
        assert change is not None, f"{table.id}: hidden {target} is derivable"
        other = [row[:] for row in base]
        for (r, c), d in change.items():
            other[r][c] += d
        assert adds_up(other), f"{table.id}: the alternative does not add up"
        assert other[target[0]][target[1]] != base[target[0]][target[1]]
