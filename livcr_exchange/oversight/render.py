"""The report as one self-contained HTML page: inline CSS and SVG charts, no script, no links."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

from .model import SECONDARY_MARK, CheckpointSeen, Count, LogSummary, Report, Table
from .tally import date_of

BAR_WIDTH: Final = 240
LABEL_WIDTH: Final = 240
ROW_HEIGHT: Final = 22
STYLE: Final = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1d2433; margin: 24px auto;
       max-width: 1100px; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px;
     border-bottom: 2px solid #d8dee9; padding-bottom: 4px; }
.meta { color: #4c566a; } .ok { color: #2e7d32; font-weight: 600; }
.warn { color: #b00020; font-weight: 600; }
table { border-collapse: collapse; margin: 8px 0 16px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d8dee9; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; } thead th { background: #eceff4; }
table.facts td { text-align: left; } .pair { display: flex; flex-wrap: wrap; gap: 24px;
       align-items: flex-start; }
tr.total td, td.total { font-weight: 600; background: #f5f7fa; }
td.hidden { color: #8a5a00; background: #fff6e0; }
.legend { font-size: 12px; color: #4c566a; } code { font-size: 12px; word-break: break-all; }
svg { display: block; margin-bottom: 10px; }
svg text { font: 12px system-ui, sans-serif; fill: #1d2433; }
"""


def render_html(report: Report) -> str:
    """The whole page; every text taken from the report is escaped."""
    cells = ", ".join(sorted({log.cell_id for log in report.logs}))
    scope = "region" if report.scope == "region" else "cell"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Oversight report: {escape(cells)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Oversight report of the LIVC-R {scope} {escape(cells)}</h1>",
        (
            f'<p class="meta">Drawn up {date_of(report.generated_at)} (UTC)'
            f" by the {escape(report.auditor.role)}"
            f" of organisation {escape(report.auditor.organisation)}, signed with key"
            f" <code>{escape(report.auditor.key)}</code>. Counts from 1 to {report.threshold - 1}"
            f" are shown as <b>&lt;{report.threshold}</b>; counts marked <b>x</b> are hidden so"
            " that no total reveals a small one. No case reference, person or message content"
            " appears in this report.</p>"
        ),
        "<h2>What was verified</h2>",
        *(_log_section(log) for log in report.logs),
    ]
    parts.extend(_table_section(table, report.threshold) for table in report.tables)
    parts.append(_witness_section(report))
    parts.append(
        '<p class="legend">Check this report: <code>livcr audit verify report.json --key '
        f"{escape(report.auditor.key)}</code></p></body></html>"
    )
    return "\n".join(parts) + "\n"


def _log_section(log: LogSummary) -> str:
    period = (
        "no readable leaves"
        if log.first_logged_at is None or log.last_logged_at is None
        else f"{date_of(log.first_logged_at)} to {date_of(log.last_logged_at)}"
    )
    consistency = (
        f'<span class="ok">proven to extend the checkpoint of size {log.consistent_from_size}'
        " seen by an earlier audit</span>"
        if log.consistent_from_size is not None
        else "no earlier checkpoint to compare with"
    )
    directory = (
        '<span class="ok">every statement is in the log</span>'
        if log.directory_statements_logged == log.directory_statements_verified
        else '<span class="warn">statements missing from the log</span>'
    )
    rows = [
        ("log", f"<code>{escape(log.origin)}</code>"),
        (
            "tree",
            (
                f'<span class="ok">{log.size} leaves, every leaf hash recomputed into the signed'
                f" root</span> <code>{escape(log.root)}</code>"
            ),
        ),
        ("earlier audits", consistency),
        ("leaves read", f"{log.leaves_read} ({period})"),
        ("deleted by retention", f"{log.leaves_deleted_by_retention} leaves (hash kept)"),
        ("withheld from the auditor", str(log.leaves_withheld)),
        (
            "directory",
            (
                f"{log.directory_statements_verified} statements signed by the cell's root key;"
                f" {directory}"
            ),
        ),
    ]
    body = "".join(f"<tr><td>{name}</td><td>{value}</td></tr>" for name, value in rows)
    return f'<table class="facts"><tbody>{body}</tbody></table>'


def _shown(count: Count) -> str:
    return escape(str(count))


def _cell(count: Count, css: str = "") -> str:
    classes = " ".join(c for c in (css, "hidden" if isinstance(count, str) else "") if c)
    attribute = f' class="{classes}"' if classes else ""
    return f"<td{attribute}>{_shown(count)}</td>"


def _table_section(table: Table, threshold: int) -> str:
    margins = len(table.columns) > 1
    if margins:
        bars = list(zip(table.rows, table.row_totals, strict=True))
        header = "".join(f"<th>{escape(c)}</th>" for c in table.columns) + "<th>total</th>"
    else:
        bars = [(name, row[0]) for name, row in zip(table.rows, table.cells, strict=True)]
        header = f"<th>{escape(table.columns[0])}</th>"
    lines = []
    for r, name in enumerate(table.rows):
        values = "".join(_cell(c) for c in table.cells[r])
        if margins:
            values += _cell(table.row_totals[r], "total")
        lines.append(f"<tr><td>{escape(name)}</td>{values}</tr>")
    totals = "".join(_cell(c) for c in table.column_totals) if margins else ""
    lines.append(f'<tr class="total"><td>total</td>{totals}{_cell(table.total)}</tr>')
    chart = _bar_chart(table.id, bars, threshold) if table.rows else "<p>Nothing recorded.</p>"
    extra = ""
    if margins and len(table.columns) > 1:
        extra = _bar_chart(
            table.id + "-columns",
            list(zip(table.columns, table.column_totals, strict=True)),
            threshold,
        )
    return (
        f'<h2>{escape(table.title)}</h2><div class="pair">'
        f"<table><thead><tr><th>{escape(table.row_label)}</th>{header}</tr></thead>"
        f"<tbody>{''.join(lines)}</tbody></table><div>{chart}{extra}</div></div>"
    )


def _bar_chart(chart_id: str, bars: Sequence[tuple[str, Count]], threshold: int) -> str:
    """Horizontal bars; a hidden count is a hatched stub labelled with its mark."""
    known = [c for _, c in bars if isinstance(c, int)]
    scale = max([4 * threshold, *known])  # a hidden count's stub stays short beside the rest
    height = ROW_HEIGHT * len(bars) + 8
    width = LABEL_WIDTH + BAR_WIDTH + 60
    pattern = f"hatch-{escape(chart_id)}"
    shapes = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
            f' viewBox="0 0 {width} {height}" role="img">'
        ),
        (
            f'<defs><pattern id="{pattern}" width="6" height="6" patternUnits="userSpaceOnUse"'
            ' patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff6e0"/>'
            '<line x1="0" y1="0" x2="0" y2="6" stroke="#d08c00" stroke-width="2"/></pattern></defs>'
        ),
    ]
    for i, (label, count) in enumerate(bars):
        y = 4 + i * ROW_HEIGHT
        shapes.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
        )
        if isinstance(count, int):
            length = round(BAR_WIDTH * count / scale) if scale else 0
            shapes.append(
                f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{length}" height="{ROW_HEIGHT - 6}"'
                ' fill="#4c78a8"/>'
            )
        else:
            stub = BAR_WIDTH * (threshold if count != SECONDARY_MARK else 1) / scale
            shapes.append(
                f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{round(stub)}"'
                f' height="{ROW_HEIGHT - 6}" fill="url(#{pattern})" stroke="#d08c00"'
                ' stroke-dasharray="3 2"/>'
            )
            length = round(stub)
        shapes.append(f'<text x="{LABEL_WIDTH + length + 6}" y="{y + 15}">{_shown(count)}</text>')
    shapes.append("</svg>")
    return "".join(shapes)


def _witness_section(report: Report) -> str:
    rows = "".join(
        f"<tr><td><code>{escape(seen.origin)}</code></td><td>{seen.size}</td>"
        f"<td>{seen.log_signatures}</td><td>{seen.cosignatures}</td>"
        f"<td>{escape(', '.join(seen.cosigners)) or '-'}</td><td>{_against_policy(seen)}</td></tr>"
        for seen in report.witness
    )
    cosigned = sum(1 for seen in report.witness if seen.cosignatures)
    return (
        "<h2>Witness coverage</h2>"
        f"<p>{len(report.witness)} signed checkpoint(s) verified against the log key;"
        f" {cosigned} carry cosignatures by other keys (C2SP signed-note lines). Those of the"
        " witnesses in the cell's root-signed witness policy are verified against their keys;"
        " other lines are counted by key name only.</p><table><thead><tr><th>log</th>"
        "<th>tree size</th><th>log signatures</th><th>cosignatures</th><th>cosigners</th>"
        f"<th>verified against the witness policy</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _against_policy(seen: CheckpointSeen) -> str:
    """Which policy witnesses' cosignatures verified, whether they reach the quorum, and which
    lines claiming to be a policy witness's did not verify."""
    if seen.quorum is None:
        return "no witness policy"
    verified = ", ".join(seen.witnessed_by) or "none"
    if seen.quorum == 0:
        reached = "quorum 0: never witnessed"
    elif len(seen.witnessed_by) >= seen.quorum:
        reached = f"quorum {seen.quorum} met"
    else:
        reached = f"quorum {seen.quorum} not met"
    text = f"{escape(verified)}; {reached}"
    if seen.invalid_cosigners:
        text += f"; <strong>did not verify: {escape(', '.join(seen.invalid_cosigners))}</strong>"
    return text
