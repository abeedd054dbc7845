"""Line charts as inline SVG, so the HTML report stays one file that opens offline."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, MARGIN = 640, 220, 44
COLOURS = (
    "#2563eb", "#d97706", "#dc2626", "#059669", "#7c3aed", "#0891b2", "#be185d",
    "#65a30d", "#92400e", "#4b5563", "#0f766e", "#9333ea", "#ea580c", "#1e3a8a",
)  # fmt: skip


def line_chart(title: str, unit: str, lines: dict[str, list[tuple[float, float]]]) -> str:
    """`lines`: label -> (x seconds, y) points. An empty chart says so rather than drawing nothing."""
    points = [p for series in lines.values() for p in series]
    if not points:
        return f'<figure class="chart"><figcaption>{escape(title)}: no data</figcaption></figure>'
    x_max = max(x for x, _ in points) or 1.0
    top = max(y for _, y in points) or 1.0
    y_max = top * 1.1  # headroom above the highest point

    def sx(x: float) -> float:
        return MARGIN + (WIDTH - 2 * MARGIN) * x / x_max

    def sy(y: float) -> float:
        return HEIGHT - MARGIN + (2 * MARGIN - HEIGHT) * y / y_max

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#999"/>',
        f'<line x1="{MARGIN}" y1="{MARGIN / 2}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#999"/>',
        f'<text x="{MARGIN - 4}" y="{sy(top) + 4:.1f}" text-anchor="end" font-size="10">{top:.4g}</text>',
        f'<text x="{MARGIN - 4}" y="{HEIGHT - MARGIN + 4}" text-anchor="end" font-size="10">0</text>',
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - MARGIN + 16}" text-anchor="end" font-size="10">{x_max:.0f} s</text>',
        f'<text x="{MARGIN}" y="{HEIGHT - 8}" font-size="10">{escape(unit)}</text>',
    ]
    for index, series in enumerate(lines.values()):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in series)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
    parts.append("</svg>")
    # The legend under the chart, as HTML: it wraps however many lines there are.
    legend = "".join(
        f'<span style="color:{COLOURS[i % len(COLOURS)]};margin-right:1em">&#9632; {escape(label)}</span>'
        for i, label in enumerate(lines)
    )
    return (
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>{"".join(parts)}'
        f'<div style="max-width:{WIDTH}px;font-size:12px">{legend}</div></figure>'
    )
