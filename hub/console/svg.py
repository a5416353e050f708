"""Charts drawn on the server as SVG: a line of values and stacked bars. No script, no fonts.

Each chart is ``role="img"`` with a ``<title>`` and ``<desc>``, and its page shows the same
numbers in a table: the chart is for the eye, the table for everyone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

WIDTH = 720
HEIGHT = 240
LEFT = 64  # room for the value labels
BOTTOM = 28
TOP = 12
# Colours distinguishable in common colour-vision deficiencies (Okabe-Ito), on white.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
INK = "#1a1a1a"


def _frame(chart_id: str, title: str, desc: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" class="chart" id="{chart_id}">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>{body}</svg>'
    )


def _axes(top_value: int) -> str:
    plot_bottom = HEIGHT - BOTTOM
    return (
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{plot_bottom}" stroke="{INK}"/>'
        f'<line x1="{LEFT}" y1="{plot_bottom}" x2="{WIDTH - 8}" y2="{plot_bottom}" '
        f'stroke="{INK}"/>'
        f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end" font-size="12" '
        f'fill="{INK}">{top_value}</text>'
        f'<text x="{LEFT - 6}" y="{plot_bottom}" text-anchor="end" font-size="12" '
        f'fill="{INK}">0</text>'
    )


def line_chart(chart_id: str, title: str, desc: str, values: Sequence[int]) -> str:
    """``values`` left to right as a polyline over an axis from 0 to their maximum."""
    top_value = max(values, default=0) or 1
    plot_width = WIDTH - 8 - LEFT
    plot_height = HEIGHT - BOTTOM - TOP
    step = plot_width / max(len(values) - 1, 1)
    points = " ".join(
        f"{LEFT + i * step:.1f},{HEIGHT - BOTTOM - v / top_value * plot_height:.1f}"
        for i, v in enumerate(values)
    )
    line = (
        f'<polyline points="{points}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>'
        if values
        else ""
    )
    return _frame(chart_id, title, desc, _axes(top_value) + line)


def stacked_bars(
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
) -> str:
    """One bar per label, stacked by series (in ``series`` order), with a legend."""
    totals = [sum(s[i] for s in series.values()) for i in range(len(labels))]
    top_value = max(totals, default=0) or 1
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - 8 - LEFT) / max(len(labels), 1)
    parts = [_axes(top_value)]
    for i, label in enumerate(labels):
        x = LEFT + i * slot + 2
        base = float(HEIGHT - BOTTOM)
        for n, (name, counts) in enumerate(series.items()):
            height = counts[i] / top_value * plot_height
            if counts[i]:
                base -= height
                parts.append(
                    f'<rect x="{x:.1f}" y="{base:.1f}" width="{slot - 4:.1f}" '
                    f'height="{height:.1f}" fill="{PALETTE[n % len(PALETTE)]}">'
                    f"<title>{escape(label)} {escape(name)}: {counts[i]}</title></rect>"
                )
        if i % max(len(labels) // 8, 1) == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 10}" font-size="11" fill="{INK}">'
                f"{escape(label)}</text>"
            )
    parts.append(_legend(list(series)))
    return _frame(chart_id, title, desc, "".join(parts))


def _legend(names: list[str]) -> str:
    items = []
    for n, name in enumerate(names):
        y = TOP + 4 + n * 16
        items.append(
            f'<rect x="{WIDTH - 190}" y="{y}" width="10" height="10" '
            f'fill="{PALETTE[n % len(PALETTE)]}"/>'
            f'<text x="{WIDTH - 175}" y="{y + 9}" font-size="12" fill="{INK}">{escape(name)}</text>'
        )
    return "".join(items)
