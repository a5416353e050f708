"""Build a cell's report from its verified log, and a regional one from signed cell reports."""

from __future__ import annotations

from collections.abc import Sequence

from .evidence import VerifiedLog
from .model import REPORT_FORMAT, Auditor, Count, LogSummary, Report, Table
from .suppression import Position
from .tables import ExactTable, publish
from .tally import DAY, tally


def cell_report(
    log: VerifiedLog, *, now: int, threshold: int, retention_days: int, auditor: Auditor
) -> Report:
    """The suppressed report of one cell; ``now`` judges retention and dates the report."""
    last = log.checkpoints[-1]
    times = [leaf.logged_at // DAY * DAY for leaf in log.leaves]  # days: no event's instant
    summary = LogSummary(
        cell_id=log.cell_id,
        origin=log.origin,
        size=last.size,
        root=last.root,
        leaves_read=len(log.leaves),
        leaves_deleted_by_retention=log.deleted,
        leaves_withheld=log.withheld,
        directory_statements_verified=len(log.directory.entries) + len(log.directory.revocations),
        directory_statements_logged=log.statements_logged,
        first_logged_at=min(times, default=None),
        last_logged_at=max(times, default=None),
        consistent_from_size=log.consistent_from_size,
    )
    tables = [publish(t, threshold) for t in tally(log, now=now, retention_days=retention_days)]
    return Report(
        format=REPORT_FORMAT,
        scope="cell",
        generated_at=now,
        threshold=threshold,
        retention_days=retention_days,
        auditor=auditor,
        logs=[summary],
        witness=list(log.checkpoints),
        tables=tables,
    )


def regional_report(
    reports: Sequence[Report], *, now: int, threshold: int, auditor: Auditor
) -> Report:
    """Sum verified reports table by table; a sum with a hidden part is hidden, then the
    regional tables are suppressed again so that no hidden sum can be derived either."""
    threshold = max([threshold, *(r.threshold for r in reports)])
    order: list[str] = []
    by_id: dict[str, list[Table]] = {}
    for report in reports:
        for table in report.tables:
            if table.id not in by_id:
                order.append(table.id)
            by_id.setdefault(table.id, []).append(table)
    retention = {r.retention_days for r in reports}
    return Report(
        format=REPORT_FORMAT,
        scope="region",
        generated_at=now,
        threshold=threshold,
        retention_days=retention.pop() if len(retention) == 1 else 0,
        auditor=auditor,
        logs=[log for r in reports for log in r.logs],
        witness=[seen for r in reports for seen in r.witness],
        tables=[_sum_tables(by_id[table_id], threshold) for table_id in order],
    )


def _sum_tables(tables: Sequence[Table], threshold: int) -> Table:
    first = tables[0]
    rows = _union([t.rows for t in tables])
    columns = _union([t.columns for t in tables])
    sums: dict[Position, int | None] = {}
    for table in tables:
        for position, count in _contributions(table, rows, columns).items():
            current = sums.get(position, 0)
            sums[position] = None if current is None or isinstance(count, str) else current + count
    cells = tuple(
        tuple(sums.get(("cell", r, c), 0) for c in range(len(columns))) for r in range(len(rows))
    )
    totals = {p: v for p, v in sums.items() if p[0] != "cell"}
    exact = ExactTable(
        first.id, first.title, first.row_label, first.column_label, rows, columns, cells
    )
    return publish(exact, threshold, totals=totals)


def _union(groups: Sequence[Sequence[str]]) -> tuple[str, ...]:
    found: list[str] = []
    for group in groups:
        found += [name for name in group if name not in found]
    return tuple(found)


def _contributions(
    table: Table, rows: tuple[str, ...], columns: tuple[str, ...]
) -> dict[Position, Count]:
    """What one cell's published table adds to each position of the regional table."""
    added: dict[Position, Count] = {("total", 0, 0): table.total}
    own_margins = len(table.columns) > 1
    for r, row_name in enumerate(table.rows):
        for c, column_name in enumerate(table.columns):
            added[("cell", rows.index(row_name), columns.index(column_name))] = table.cells[r][c]
    if len(columns) == 1:
        return added
    for r, row_name in enumerate(table.rows):
        added[("row", rows.index(row_name), 0)] = (
            table.row_totals[r] if own_margins else table.cells[r][0]
        )
    for c, column_name in enumerate(table.columns):
        added[("column", 0, columns.index(column_name))] = (
            table.column_totals[c] if own_margins else table.total
        )
    return added
