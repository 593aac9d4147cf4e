"""Tiny inline SVG charts for the dashboard: pure functions from numbers to SVG markup (escaped)."""

from markupsafe import Markup, escape


def sparkline(points, width=160, height=36):
    """A line of (x, y) points scaled into a width×height SVG; a flat line for fewer than 2 points."""
    if not points:
        return Markup(f'<svg width="{width}" height="{height}" role="img" aria-label="no data"></svg>')
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    x0, x1 = min(xs), max(xs)
    y1 = max(ys) or 1
    span = (x1 - x0) or 1

    def scale(x, y):
        return (round(2 + (x - x0) / span * (width - 4), 1), round(height - 2 - y / y1 * (height - 4), 1))

    coords = (
        [scale(x, y) for x, y in points]
        if len(points) > 1
        else [(2, scale(*points[0])[1]), (width - 2, scale(*points[0])[1])]
    )
    path = " ".join(f"{x},{y}" for x, y in coords)
    label = escape(f"from {ys[0]} to {ys[-1]} members")
    return Markup(
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{label}">'
        f'<polyline fill="none" stroke="#2b6cb0" stroke-width="2" points="{path}"/></svg>'
    )


def bar(value, maximum, width=260, height=22):
    """A horizontal bar for value out of maximum."""
    filled = 0 if not maximum else round(value / maximum * width)
    return Markup(
        f'<svg width="{width}" height="{height}" role="img" aria-label="{escape(str(value))}">'
        f'<rect width="{width}" height="{height}" fill="#edf2f7"/>'
        f'<rect width="{filled}" height="{height}" fill="#38a169"/></svg>'
    )
