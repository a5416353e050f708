"""Small-count suppression: primary marks, and no hidden count derivable from the published ones."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from oversight_checks import assert_nothing_derivable

from livcr_exchange.oversight import regional_report
from livcr_exchange.oversight.model import REPORT_FORMAT, SECONDARY_MARK, Auditor, Report
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


def cell_report_of(tables: list[ExactTable], threshold: int) -> Report:
    return Report(
        format=REPORT_FORMAT,
        scope="cell",
        generated_at=0,
        threshold=threshold,
        retention_days=365,
        auditor=Auditor(organisation="0207437468", role="toezicht", key="k"),
        logs=[],
        witness=[],
        tables=[publish(t, threshold) for t in tables],
    )


@settings(max_examples=150, deadline=None)
@given(
    st.integers(2, 4).flatmap(
        lambda columns: st.lists(
            st.lists(st.lists(COUNTS, min_size=columns, max_size=columns), min_size=1, max_size=4),
            min_size=2,
            max_size=3,
        )
    )
)
def test_a_regional_sum_keeps_every_hidden_count_hidden(cells: list[list[list[int]]]) -> None:
    rows = max(len(c) for c in cells)
    padded = [c + [[0] * len(c[0])] * (rows - len(c)) for c in cells]
    parts = [cell_report_of([exact_table(c)], 5) for c in padded]
    region = regional_report(parts, now=0, threshold=5, auditor=parts[0].auditor).tables[0]
    true = exact_table(
        [[sum(c[r][k] for c in padded) for k in range(len(padded[0][0]))] for r in range(rows)]
    )
    exact = hidden_exact(true)
    shown = {
        **{(r, c): v for r, row in enumerate(region.cells) for c, v in enumerate(row)},
        **{(r, len(true.columns)): v for r, v in enumerate(region.row_totals)},
        **{(len(true.rows), c): v for c, v in enumerate(region.column_totals)},
        (len(true.rows), len(true.columns)): region.total,
    }
    for position, value in shown.items():
        if isinstance(value, int):
            assert value == exact[position]
    hidden = {p: exact[p] for p, v in shown.items() if isinstance(v, str)}
    assert_nothing_derivable(region, hidden)
    # Whatever a part hid stays hidden in the sum.
    for part in parts:
        table = part.tables[0]
        for r, row in enumerate(table.cells):
            for c, value in enumerate(row):
                if isinstance(value, str):
                    assert isinstance(region.cells[r][c], str)
