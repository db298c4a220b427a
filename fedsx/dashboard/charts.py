"""Charts as inline SVG, drawn on the server: nothing to load, so the dashboard works on a
node without internet. Every mark is a link to the admin list behind it, with a
``<title>`` a screen reader (and a hovering mouse) reads; each chart has a title and a
description, and the page prints the same numbers as text beside it."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .figures import Figure, Hour

# Colours with enough contrast on the admin's light and dark backgrounds.
PALETTE = {
    # the inbox
    "accepted": "#2e7d32",
    "actor_gone": "#9e9d24",
    "other": "#757575",
    # deliveries
    "delivered": "#2e7d32",
    "pending": "#1565c0",
    "held": "#ef6c00",
    "failed": "#c62828",
    "expired": "#8d6e63",
    "cancelled": "#757575",
    # flow instances and what they wait for
    "done": "#2e7d32",
    "running": "#00838f",
    "suspended": "#1565c0",
    "crashed": "#c62828",
    "nondeterministic": "#6a1b9a",
    "operator": "#1565c0",
    "activity": "#00838f",
    "timer": "#6a1b9a",
}
REASON_COLOURS = ("#c62828", "#ef6c00", "#6a1b9a", "#ad1457", "#f9a825")


def colour(name: str, index: int = 0) -> str:
    return PALETTE.get(name) or REASON_COLOURS[index % len(REASON_COLOURS)]


def outcome_colours(outcomes: Sequence[Figure]) -> dict[str, str]:
    """The inbox's colours: the 202s and other fixed, refusal codes in frequency order."""
    fixed = ("accepted", "actor_gone", "other")
    reasons = [f.label for f in outcomes if f.label not in fixed]
    return {
        f.label: PALETTE.get(f.label)
        if f.label in fixed
        else REASON_COLOURS[reasons.index(f.label) % len(REASON_COLOURS)]
        for f in outcomes
    }


def _svg(title: str, description: str, width: int, height: int, body: SafeString) -> SafeString:
    return format_html(
        '<svg class="fedsx-chart" role="img" aria-labelledby="{0}-t {0}-d" '
        'viewBox="0 0 {1} {2}" width="{1}" height="{2}" xmlns="http://www.w3.org/2000/svg">'
        '<title id="{0}-t">{3}</title><desc id="{0}-d">{4}</desc>{5}</svg>',
        _slug(title),
        width,
        height,
        title,
        description,
        body,
    )


def _slug(text: str) -> str:
    return "chart-" + "".join(c if c.isalnum() else "-" for c in text.lower())


def bars(title: str, figures: Sequence[Figure], *, label_width: int = 120) -> SafeString:
    """Horizontal bars, one per figure: label, bar, number; each row one link."""
    row, bar_space, number_space = 24, 170, 60
    width = label_width + bar_space + number_space
    height = row * len(figures) + 4
    top = max((f.value for f in figures), default=0) or 1
    rows = format_html_join(
        "",
        '<a href="{url}"><title>{label}: {value}</title>'
        '<text class="label" x="{lx}" y="{ty}" text-anchor="end">{label}</text>'
        '<rect class="track" x="{bx}" y="{y}" width="{track}" height="16" rx="2"/>'
        '<rect x="{bx}" y="{y}" width="{w}" height="16" rx="2" fill="{fill}"/>'
        '<text class="number" x="{nx}" y="{ty}">{value}</text></a>',
        (
            {
                "url": f.url,
                "label": f.label,
                "value": f.value,
                "lx": label_width - 8,
                "bx": label_width,
                "y": 4 + i * row,
                "ty": 4 + i * row + 13,
                "track": bar_space,
                "w": round(bar_space * f.value / top, 1) if f.value else 0,
                "fill": colour(f.label, i),
                "nx": label_width + bar_space + 8,
            }
            for i, f in enumerate(figures)
        ),
    )
    described = ", ".join(f"{f.label} {f.value}" for f in figures)
    return _svg(title, described, width, height, rows)


def hourly(title: str, hours: Sequence[Hour], colours: dict[str, str]) -> SafeString:
    """Stacked columns, one per hour, oldest left; each segment links to its hour's rows."""
    left, bottom, top_pad = 44, 22, 10
    column, gap = 30, 6
    plot_height = 180
    width = left + len(hours) * (column + gap) + 8
    height = top_pad + plot_height + bottom
    peak = _nice(max((h.total for h in hours), default=0))
    marks = []
    for i, hour in enumerate(hours):
        x = left + i * (column + gap) + gap / 2
        base = top_pad + plot_height
        for segment in hour.segments:
            h = plot_height * segment.value / peak
            base -= h
            marks.append(
                format_html(
                    '<a href="{}"><title>{} UTC, {}: {}</title>'
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/></a>',
                    segment.url,
                    f"{hour.start:%H:00} to {(hour.start.hour + 1) % 24:02d}:00",
                    segment.label,
                    segment.value,
                    x,
                    round(base, 2),
                    column,
                    round(max(h, 0.5), 2),
                    colours.get(segment.label, colour("other")),
                )
            )
        if i % 3 == 0 or i == len(hours) - 1:
            marks.append(
                format_html(
                    '<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>',
                    x + column / 2,
                    top_pad + plot_height + 15,
                    f"{hour.start:%H}h",
                )
            )
    axis = format_html(
        '<line class="axis" x1="{l}" y1="{t}" x2="{r}" y2="{t}"/>'
        '<line class="grid" x1="{l}" y1="{m}" x2="{r}" y2="{m}"/>'
        '<line class="axis" x1="{l}" y1="{b}" x2="{r}" y2="{b}"/>'
        '<text class="tick" x="{lx}" y="{ty}" text-anchor="end">{peak}</text>'
        '<text class="tick" x="{lx}" y="{my}" text-anchor="end">{half}</text>'
        '<text class="tick" x="{lx}" y="{by}" text-anchor="end">0</text>',
        l=left,
        r=width - 4,
        t=top_pad,
        m=top_pad + plot_height / 2,
        b=top_pad + plot_height,
        lx=left - 6,
        ty=top_pad + 4,
        my=top_pad + plot_height / 2 + 4,
        by=top_pad + plot_height + 4,
        peak=peak,
        half=_half(peak),
    )
    total = sum(h.total for h in hours)
    described = f"{total} requests in {len(hours)} hours; the busiest hour had " + str(
        max((h.total for h in hours), default=0)
    )
    return _svg(title, described, width, height, SafeString(axis + "".join(marks)))


def _nice(value: int) -> int:
    """The axis top: 1, 2 or 5 times a power of ten, at least ``value`` (1 when empty)."""
    if value <= 1:
        return 1
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def _half(peak: int) -> str:
    return f"{peak / 2:g}"
