"""Small server-rendered SVG charts for the statistics page: no script, readable in any theme
(they draw with ``currentColor``), with a title and a text equivalent for screen readers."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 600, 176, 24
TOP = 40  # room for the title and the legend
COLORS = ("#2a7ae2", "#e2a02a", "#d9534f")


def bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[Sequence[float]],
    names: Sequence[str] = (),
    limit: float | None = None,
    limit_label: str = "",
) -> Markup:
    """Grouped bars per label (one colour a series), and a dashed line at ``limit``."""
    top = max([*(v for s in series for v in s), limit or 0, 1])
    n, k = max(len(labels), 1), max(len(series), 1)
    slot = (WIDTH - 2 * PAD) / n
    bar = max(slot / (k + 1), 1)
    parts = []
    for si, values in enumerate(series):
        for i, value in enumerate(values):
            h = (HEIGHT - PAD - TOP) * value / top
            x = PAD + i * slot + si * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{COLORS[si % len(COLORS)]}"><title>{escape(labels[i])}: '
                f"{value:g}</title></rect>"
            )
    if limit is not None:
        y = HEIGHT - PAD - (HEIGHT - PAD - TOP) * limit / top
        parts.append(
            f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d9534f" '
            f'stroke-dasharray="4 3"/><text x="{WIDTH - PAD}" y="{y - 3:.1f}" '
            f'text-anchor="end" font-size="10" fill="#d9534f">{escape(limit_label)} {limit:g}'
            "</text>"
        )
    return _frame(title, labels, top, parts, names, series)


def line(title: str, labels: Sequence[str], values: Sequence[float | None]) -> Markup:
    """A line through the days that have a value (a gap where there is none), 0 to 1."""
    top = max([1.0, *(v for v in values if v is not None)])
    slot = (WIDTH - 2 * PAD) / max(len(labels) - 1, 1)
    points = [
        f"{PAD + i * slot:.1f},{HEIGHT - PAD - (HEIGHT - PAD - TOP) * v / top:.1f}"
        for i, v in enumerate(values)
        if v is not None
    ]
    parts = [
        f'<polyline points="{" ".join(points)}" fill="none" stroke="{COLORS[0]}" stroke-width="2"/>'
    ]
    parts += [
        f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="2.5" fill="{COLORS[0]}"/>'
        for p in points
    ]
    return _frame(title, labels, top, parts, (), [[v or 0 for v in values]])


def _frame(
    title: str,
    labels: Sequence[str],
    top: float,
    parts: list[str],
    names: Sequence[str],
    series: Sequence[Sequence[float]],
) -> Markup:
    first, last = (labels[0], labels[-1]) if labels else ("", "")
    legend = "".join(
        f'<tspan fill="{COLORS[i % len(COLORS)]}">■ {escape(name)}  </tspan>'
        for i, name in enumerate(names)
    )
    summary = "; ".join(
        f"{escape(name or title)}: {sum(s):g}"
        for name, s in zip(names or [title], series, strict=False)
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}: {summary}"><title>{escape(title)}</title>'
        f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{HEIGHT - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="currentColor" stroke-opacity=".4"/>'
        + "".join(parts)
        + f'<text x="{PAD}" y="{HEIGHT - 6}" font-size="10" fill="currentColor">'
        f"{escape(first)}</text>"
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" font-size="10" text-anchor="end" '
        f'fill="currentColor">{escape(last)}</text>'
        f'<text x="{PAD}" y="13" font-size="12" font-weight="bold" fill="currentColor">'
        f"{escape(title)}</text>"
        f'<text x="{PAD}" y="28" font-size="10" fill="currentColor">max {top:g}  {legend}</text>'
        "</svg>"
    )


def funnel(
    title: str,
    labels: Sequence[str],
    reached: Sequence[int],
    entered: int,
    medians: Sequence[str],
) -> Markup:
    """One horizontal bar a step: how many reached it, as a share of all who entered, with the
    median time spent there; the bars narrow as members drop off. Large type: it is read on a
    phone, where the 600-unit drawing is about 340 pixels wide."""
    row, label_h, bar_h = 56, 20, 18
    top = 30
    height = top + row * max(len(labels), 1)
    room = (WIDTH - 2 * PAD) * 0.62  # the rest of the line holds the figures
    parts = []
    for i, (label, n, median) in enumerate(zip(labels, reached, medians, strict=True)):
        share = n / entered if entered else 0.0
        y = top + i * row
        w = max(room * share, 2.0)
        parts.append(
            f'<text x="{PAD}" y="{y + label_h - 4}" font-size="18" fill="currentColor">'
            f"{escape(label)}</text>"
            f'<rect x="{PAD}" y="{y + label_h}" width="{w:.1f}" height="{bar_h}" '
            f'fill="{COLORS[0]}" rx="3"><title>{escape(label)}: {n} ({share:.0%})</title></rect>'
            f'<text x="{PAD + w + 8:.1f}" y="{y + label_h + bar_h - 3}" font-size="16" '
            f'fill="currentColor">{n} · {share:.0%} · {escape(median)}</text>'
        )
    summary = "; ".join(f"{escape(label)}: {n}" for label, n in zip(labels, reached, strict=True))
    return Markup(
        f'<svg class="chart funnel" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}: {summary}"><title>{escape(title)}</title>'
        f'<text x="{PAD}" y="20" font-size="18" font-weight="bold" fill="currentColor">'
        f"{escape(title)}</text>" + "".join(parts) + "</svg>"
    )
