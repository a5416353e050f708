"""Exact tables, and the published tables made from them by suppression (spec §16.3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .model import SECONDARY_MARK, Count, Table, primary_mark
from .suppression import Layout, Position, suppress, values_of


@dataclass(frozen=True)
class ExactTable:
    """A table of exact counts, before suppression; ``None`` is a count nobody may know."""

    id: str
    title: str
    row_label: str
    column_label: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: tuple[tuple[int | None, ...], ...]

    @property
    def layout(self) -> Layout:
        return Layout(len(self.rows), len(self.columns))


def publish(
    table: ExactTable,
    threshold: int,
    *,
    totals: dict[Position, int | None] | None = None,
) -> Table:
    """Suppress small counts and those that would reveal them; return the publishable table.

    ``totals`` gives totals known on their own (a regional sum of published totals); without
    it every total is the sum of its cells.
    """
    layout = table.layout
    values = values_of(layout, table.cells)
    if totals:
        values.update(totals)
    primary, secondary = suppress(layout, values, threshold)

    def shown(position: Position) -> Count:
        if position in primary:
            value = values[position]
            return (
                SECONDARY_MARK if value is None or value >= threshold else primary_mark(threshold)
            )
        if position in secondary:
            return SECONDARY_MARK
        value = values[position]
        assert value is not None  # noqa: S101  (unknown values are always hidden)
        return value

    rows, columns = range(layout.rows), range(layout.columns)
    margins = layout.has_margins
    return Table(
        id=table.id,
        title=table.title,
        row_label=table.row_label,
        column_label=table.column_label,
        rows=list(table.rows),
        columns=list(table.columns),
        cells=[[shown(("cell", r, c)) for c in columns] for r in rows],
        row_totals=[shown(("row", r, 0)) for r in rows] if margins else [],
        column_totals=[shown(("column", 0, c)) for c in columns] if margins else [],
        total=shown(("total", 0, 0)),
    )


def counts_of(table: Table) -> dict[Position, Count]:
    """Every position of a published table with what it shows."""
    found: dict[Position, Count] = {}
    for r, row in enumerate(table.cells):
        for c, count in enumerate(row):
            found[("cell", r, c)] = count
    for r, count in enumerate(table.row_totals):
        found[("row", r, 0)] = count
    for c, count in enumerate(table.column_totals):
        found[("column", 0, c)] = count
    found[("total", 0, 0)] = table.total
    return found


def exact_from_counts(
    rows: Sequence[str], columns: Sequence[str], counts: dict[tuple[str, str], int]
) -> tuple[tuple[int | None, ...], ...]:
    """The cell matrix of ``counts`` keyed by (row, column); absent pairs count zero."""
    return tuple(tuple(counts.get((r, c), 0) for c in columns) for r in rows)
