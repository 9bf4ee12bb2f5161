"""Charts as server-rendered SVG: no chart library, no script, readable by screen readers
through a title and a table beside each chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT, PAD = 600, 160, 24
GREEN, RED, GREY = "#2f855a", "#c53030", "#a0aec0"


@dataclass(frozen=True)
class Bar:
    label: str
    good: int
    bad: int


def stacked_bars(bars: Sequence[Bar], title: str) -> str:
    """One column per bar: successes (green) under failures (red), scaled to the tallest."""
    top = max((b.good + b.bad for b in bars), default=0) or 1
    slot = (WIDTH - 2 * PAD) / max(len(bars), 1)
    plot = HEIGHT - 2 * PAD
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        f'stroke="{GREY}"/>',
        f'<text x="{PAD}" y="{PAD - 8}" font-size="11">{top}</text>',
    ]
    for i, bar in enumerate(bars):
        x = PAD + i * slot + slot * 0.1
        w = slot * 0.8
        good_h = plot * bar.good / top
        bad_h = plot * bar.bad / top
        base = HEIGHT - PAD
        tip = escape(f"{bar.label}: {bar.good} / {bar.bad}")
        parts.append(f"<g><title>{tip}</title>")
        if good_h:
            parts.append(_rect(x, base - good_h, w, good_h, GREEN))
        if bad_h:
            parts.append(_rect(x, base - good_h - bad_h, w, bad_h, RED))
        parts.append("</g>")
    step = max(1, len(bars) // 6)
    for i in range(0, len(bars), step):
        x = PAD + i * slot
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 6}" font-size="11">{escape(bars[i].label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(values: Sequence[tuple[str, int, str]], title: str) -> str:
    """One labelled row per (label, count, colour), e.g. an endpoint's deliveries by status."""
    top = max((v for _, v, _ in values), default=0) or 1
    row = 26
    height = row * len(values) + 8
    label_w = 110
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value, colour) in enumerate(values):
        y = 4 + i * row
        w = (WIDTH - label_w - 60) * value / top
        parts.append(f'<text x="0" y="{y + 16}" font-size="13">{escape(label)}</text>')
        parts.append(_rect(label_w, y + 3, max(w, 1 if value else 0), row - 8, colour))
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" font-size="13">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _rect(x: float, y: float, w: float, h: float, fill: str) -> str:
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}"/>'
