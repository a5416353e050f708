"""Small-count suppression: primary marks, and no hidden count derivable from the published ones."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from oversight_checks import assert_nothing_derivable

from livcr_exchange.oversight.model import SECONDARY_MARK
from livcr_exchange.oversight.suppression import Layout, determined, suppress, values_of
from livcr_exchange.oversight.tables import ExactTable, publish

COUNTS = st.one_of(st.integers(0, 4), st.integers(0, 40), st.just(0), st.just(3))


def exact_table(cells: list[list[int]]) -> ExactTable:
    return ExactTable(
        "t",
        "t",
        "row",
        "column",
        tuple(f"r{i}" for i in range(len(cells))),
        tuple(f"c{j}" for j in range(len(cells[0]) if cells else 1)),
        tuple(tuple(row) for row in cells),
    )


def hidden_exact(table: ExactTable) -> dict[tuple[int, int], int]:
    """Grid values (totals in the last row and column) of every position, as ints."""
    rows, columns = len(table.rows), len(table.columns)
    grid = [[*row, sum(row)] for row in table.cells]  # type: ignore[arg-type]
    grid.append([sum(grid[r][c] for r in range(rows)) for c in range(columns + 1)])
    return {(r, c): grid[r][c] for r in range(rows + 1) for c in range(columns + 1)}


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda columns: st.lists(st.lists(COUNTS, min_size=columns, max_size=columns), max_size=6)
    ),
    st.sampled_from([2, 5, 10]),
)
def test_no_hidden_count_can_be_derived_by_subtraction(
    cells: list[list[int]], threshold: int
) -> None:
    if not cells:
        cells = [[0]]
    table = exact_table(cells)
    published = publish(table, threshold)
    exact = hidden_exact(table)
    shown = {
        **{(r, c): v for r, row in enumerate(published.cells) for c, v in enumerate(row)},
        **{(r, len(table.columns)): v for r, v in enumerate(published.row_totals)},
        **{(len(table.rows), c): v for c, v in enumerate(published.column_totals)},
        (len(table.rows), len(table.columns)): published.total,
    }
    for position, value in shown.items():
        if isinstance(value, int):
            assert value == exact[position]  # published numbers are the true ones
            assert value == 0 or value >= threshold
        elif value != SECONDARY_MARK:
            assert value == f"<{threshold}"
            assert 0 < exact[position] < threshold
    hidden = {p: exact[p] for p, v in shown.items() if isinstance(v, str)}
    assert_nothing_derivable(published, hidden)


def test_a_lone_small_count_takes_a_complement() -> None:
    # One row of 3 beside rows of 10 and 12: the 3 alone could be subtracted from the total.
    published = publish(exact_table([[3], [10], [12]]), 5)
    assert [row[0] for row in published.cells] == ["<5", SECONDARY_MARK, 12]
    assert published.total == 25


def test_a_small_count_in_a_crossed_table_is_hidden_on_a_cycle() -> None:
    published = publish(exact_table([[3, 10], [20, 30]]), 5)
    assert published.cells[0][0] == "<5"
    hidden = sum(isinstance(v, str) for row in published.cells for v in row)
    hidden += sum(isinstance(v, str) for v in published.row_totals + published.column_totals)
    assert hidden >= 4  # a cycle in the table's graph needs four positions at least


def test_determined_sees_a_value_alone_in_a_sum() -> None:
    layout = Layout(2, 1)
    assert determined(layout, {("cell", 0, 0)}) == [("cell", 0, 0)]
    assert determined(layout, {("cell", 0, 0), ("cell", 1, 0)}) == []


def test_zero_is_published_and_threshold_one_hides_nothing() -> None:
    layout = Layout(2, 2)
    values = values_of(layout, [[0, 1], [2, 0]])
    assert suppress(layout, values, 1) == (set(), set())
    primary, _ = suppress(layout, values, 5)
    assert ("cell", 0, 0) not in primary
