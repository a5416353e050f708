"""Small-count suppression of a table with totals: primary and complementary (spec §16.3).

A table has ``R`` rows and ``C`` columns of counts. With more than one column it also has a total
per row, a total per column and a grand total; with one column only the grand total. Every count
from 1 to ``threshold - 1``, cell or total, is suppressed (primary). Then cells are suppressed
until no suppressed value is determined by the published ones through the table's sums
(complementary): a reader who knows every published number and every "this row adds up to its
total" equation still cannot solve for any suppressed one. Zero is published: it protects nobody
when hidden, and an impossible combination is zero in every table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

# A position in the table: ("cell", row, column), ("row", row, 0), ("column", 0, column), or
# ("total", 0, 0).
Position = tuple[str, int, int]


@dataclass(frozen=True)
class Layout:
    """The positions of a table of ``rows`` x ``columns`` counts and the sums that bind them."""

    rows: int
    columns: int

    @property
    def has_margins(self) -> bool:
        """Row and column totals exist only with more than one column."""
        return self.columns > 1

    def positions(self) -> list[Position]:
        found: list[Position] = [
            ("cell", r, c) for r in range(self.rows) for c in range(self.columns)
        ]
        if self.has_margins:
            found += [("row", r, 0) for r in range(self.rows)]
            found += [("column", 0, c) for c in range(self.columns)]
        found.append(("total", 0, 0))
        return found

    def equations(self) -> list[tuple[Position, list[Position]]]:
        """Each sum as (total, parts): the total equals the sum of its parts."""
        every_cell = [("cell", r, c) for r in range(self.rows) for c in range(self.columns)]
        if not self.has_margins:
            return [(("total", 0, 0), every_cell)]
        sums: list[tuple[Position, list[Position]]] = [
            (("row", r, 0), [("cell", r, c) for c in range(self.columns)]) for r in range(self.rows)
        ]
        sums += [
            (("column", 0, c), [("cell", r, c) for r in range(self.rows)])
            for c in range(self.columns)
        ]
        sums.append((("total", 0, 0), [("row", r, 0) for r in range(self.rows)]))
        sums.append((("total", 0, 0), [("column", 0, c) for c in range(self.columns)]))
        return sums


def values_of(layout: Layout, cells: Sequence[Sequence[int | None]]) -> dict[Position, int | None]:
    """Every position's value: the cells, and the totals they add up to (``None``: unknown)."""
    values: dict[Position, int | None] = {}
    for r in range(layout.rows):
        for c in range(layout.columns):
            values[("cell", r, c)] = cells[r][c]
    for total, parts in layout.equations():
        if total[0] != "total" or total not in values:
            known = [values[p] for p in parts]
            values[total] = None if None in known else sum(v for v in known if v is not None)
    return values


def determined(layout: Layout, hidden: set[Position]) -> list[Position]:
    """The hidden positions whose value the published ones fix through the table's sums.

    Each sum is a linear equation; the published values are constants. A hidden value is
    determined exactly when reduced row echelon form of the equations over the hidden values has
    a row with that value alone (exact rational arithmetic).
    """
    order = [p for p in layout.positions() if p in hidden]
    column_of = {p: i for i, p in enumerate(order)}
    matrix: list[list[Fraction]] = []
    for total, parts in layout.equations():
        row = [Fraction(0)] * len(order)
        for position, sign in [(total, -1), *((p, 1) for p in parts)]:
            if position in column_of:
                row[column_of[position]] += sign
        if any(row):
            matrix.append(row)
    pivots = _reduce(matrix, len(order))
    return [
        order[column]
        for row, column in pivots
        if sum(1 for value in matrix[row] if value != 0) == 1
    ]


def _reduce(matrix: list[list[Fraction]], width: int) -> list[tuple[int, int]]:
    """Bring ``matrix`` to reduced row echelon form in place; return (row, pivot column) pairs."""
    pivots: list[tuple[int, int]] = []
    lead = 0
    for column in range(width):
        found = next((r for r in range(lead, len(matrix)) if matrix[r][column] != 0), None)
        if found is None:
            continue
        matrix[lead], matrix[found] = matrix[found], matrix[lead]
        pivot = matrix[lead][column]
        matrix[lead] = [value / pivot for value in matrix[lead]]
        for r, row in enumerate(matrix):
            if r != lead and row[column] != 0:
                factor = row[column]
                matrix[r] = [a - factor * b for a, b in zip(row, matrix[lead], strict=True)]
        pivots.append((lead, column))
        lead += 1
    return pivots


def suppress(
    layout: Layout, values: dict[Position, int | None], threshold: int
) -> tuple[set[Position], set[Position]]:
    """Choose the positions to hide: (primary, complementary).

    Primary: every known value from 1 to ``threshold - 1``, and every unknown (``None``) value.
    Complementary: while a hidden value is determined by the published ones, hide one more
    published position from a sum that binds it, the smallest non-zero value first (a hidden
    zero protects little: the reader may guess it), then the first in table order.
    """
    primary = {p for p, v in values.items() if v is None or 0 < v < threshold}
    hidden = set(primary)
    sums = layout.equations()
    order = {p: i for i, p in enumerate(layout.positions())}
    while True:
        exposed = determined(layout, hidden)
        if not exposed:
            break
        target = exposed[0]
        near = {p for total, parts in sums if target in (total, *parts) for p in (total, *parts)}
        candidates = [p for p in near if p not in hidden] or [p for p in order if p not in hidden]
        if not candidates:
            break  # everything is hidden already; nothing is published to derive from
        hidden.add(min(candidates, key=lambda p: _cost(values[p], order[p])))
    return primary, hidden - primary


def _cost(value: int | None, position_order: int) -> tuple[int, int, int]:
    known = 0 if value is None else value
    return (1 if known == 0 else 0, known, position_order)
