"""Charts for the monthly report and the what-if page: PNG for email, SVG for HTML.

Given a title, category labels and named series, `line_chart`, `stacked_bars` and
`grouped_bars` return a `Chart`; nothing is drawn until `Chart.svg()` or `Chart.png()` is
called, so building a chart costs nothing and matplotlib (about a second to import) is
imported only then, by the process that draws.

What every chart keeps to:
- Colours are the Okabe-Ito palette (safe for the common colour blindnesses); lines also
  differ by marker and dash, so a chart printed in grey still reads.
- Fonts are large: the SVG scales to its container's width and stays readable at a phone's
  390 px; the PNG is 600 CSS pixels wide at twice the density (1200 px), for email.
- Text is drawn by matplotlib's text layout (libraqm): Hebrew labels read right to left, with
  numbers and Latin names inside them in their own order. In the SVG the text is paths, so
  the browser's fonts do not matter, and the alt text is the SVG's accessible name.
- Output is deterministic: same chart, same bytes (fixed hash salt, no dates in metadata).
- Labels are shown as given, never parsed as mathtext ("$5" stays "$5").
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import textwrap
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

# Okabe & Ito (2008), "Color Universal Design": distinguishable with any common colour blindness.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
LINE_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINE_STYLES = ("-", "--", "-.", ":")

WIDTH_INCHES = 5.2  # drawn this wide; the PNG is scaled to PNG_WIDTH, the SVG to its container
PNG_WIDTH = 600  # CSS pixels the PNG is meant to be shown at (<img width="600">)
PNG_SCALE = 2  # drawn at twice that, so it is sharp on phones
FONT_SIZE = 15  # points; the SVG's viewBox is 374 pt wide, so in a 340 px column of a phone this is 14 px
TITLE_SIZE = 17
HORIZONTAL_LABEL_LENGTH = 9  # longer category labels turn bars horizontal (labels then read across)
MAX_X_LABELS = 6  # more labels than this under a line or column chart: every n-th is shown
PLOT_WIDTH_POINTS = 290.0  # about how wide the plot is inside the 374 pt figure, beside the value axis
LEGEND_COLUMNS = 2

ValueFormat = Callable[[float], str]


class ChartError(ValueError):
    """The chart cannot be drawn from what it was given; the message says what is wrong."""


@dataclass(frozen=True)
class Chart:
    """A chart ready to draw. `title` is drawn in it; `alt` says in words what it shows
    (the `alt` of the PNG's <img>, the accessible name of the SVG)."""

    title: str
    alt: str
    kind: str  # "line", "stacked" or "grouped"
    labels: tuple[str, ...]
    series: tuple[tuple[str, tuple[float | None, ...]], ...]
    markers: tuple[tuple[int, str], ...] = ()
    value_format: ValueFormat | None = None

    @property
    def key(self) -> str:
        """A short digest of what the chart shows: the prefix of its SVG ids, so several
        charts inline in one page never share an id."""
        text = repr((self.kind, self.title, self.labels, self.series, self.markers))
        return "c" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]

    @property
    def horizontal(self) -> bool:
        """Bars lie across (categories down the side) when category labels are long."""
        return self.kind != "line" and any(len(label) > HORIZONTAL_LABEL_LENGTH for label in self.labels)

    def png_size(self) -> tuple[int, int]:
        """(width, height) in CSS pixels to show the PNG at; the image has PNG_SCALE times as many."""
        width, height = _figure_size(self)
        return PNG_WIDTH, round(PNG_WIDTH * height / width)

    def svg(self) -> str:
        """The chart as an inline <svg> element for HTML: no XML prolog or doctype, width 100 %
        of its container with the height following (viewBox), role="img" with the alt text
        as its name and <title>."""
        buffer = io.BytesIO()
        with _style(self):
            self._figure().savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
        return _inline_svg(buffer.getvalue().decode("utf-8"), self)

    def _figure(self) -> Any:
        """The matplotlib figure, built once (building it costs as much as saving it) and
        kept for the other format. Called inside `_style`."""
        figure = self.__dict__.get("_drawn")
        if figure is None:
            figure = _draw(self)
            # Lay it out once, then keep those positions: every save (either format, in any
            # order, any number of times) draws the same picture, byte for byte.
            figure.get_layout_engine().execute(figure)
            figure.set_layout_engine("none")
            object.__setattr__(self, "_drawn", figure)  # a cache, not a field: equality and hash ignore it
        return figure

    def png(self) -> bytes:
        """The chart as PNG bytes for email, PNG_WIDTH * PNG_SCALE pixels wide."""
        buffer = io.BytesIO()
        with _style(self):
            figure = self._figure()
            width, _ = figure.get_size_inches()
            figure.savefig(buffer, format="png", dpi=PNG_WIDTH * PNG_SCALE / width, metadata={"Software": None})
        return buffer.getvalue()


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    markers: Sequence[tuple[int, str]] = (),
    value_format: ValueFormat | None = None,
    alt: str,
) -> Chart:
    """A line per series over `labels` (e.g. months); None leaves a gap. `markers` are
    (label index, text) vertical marks such as "policy enabled". Raises ChartError."""
    chart = _chart("line", title, labels, series, value_format, alt, allow_gaps=True)
    checked = []
    for index, text in markers:
        if not isinstance(index, int) or not 0 <= index < len(chart.labels):
            raise ChartError(f"chart {title!r}: marker {text!r} is at {index!r}, outside the {len(chart.labels)} labels")
        checked.append((index, str(text)))
    return Chart(**{**chart.__dict__, "markers": tuple(checked)})


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    value_format: ValueFormat | None = None,
    alt: str,
) -> Chart:
    """A bar per label, each series a layer of it (values >= 0); the total is written at
    the end of each bar. Raises ChartError."""
    chart = _chart("stacked", title, labels, series, value_format, alt, allow_gaps=False)
    if any(value is not None and value < 0 for _, values in chart.series for value in values):
        raise ChartError(f"chart {title!r}: a stacked bar cannot have a negative layer")
    return chart


def grouped_bars(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    value_format: ValueFormat | None = None,
    alt: str,
) -> Chart:
    """A group per label, a bar per series side by side, each bar's value written at its
    end. Raises ChartError."""
    return _chart("grouped", title, labels, series, value_format, alt, allow_gaps=False)


def _chart(kind, title, labels, series, value_format, alt, *, allow_gaps: bool) -> Chart:
    if not str(alt or "").strip():
        raise ChartError(f"chart {title!r}: alt text is required (say in words what the chart shows)")
    labels = tuple(str(label) for label in labels)
    checked = []
    for name, values in series.items():
        values = tuple(values)
        if len(values) != len(labels):
            raise ChartError(f"chart {title!r}: series {name!r} has {len(values)} values for {len(labels)} labels")
        for value in values:
            if value is None and allow_gaps:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ChartError(f"chart {title!r}: series {name!r} has {value!r}, not a number")
        checked.append((str(name), values))
    if len(checked) > len(PALETTE):
        raise ChartError(f"chart {title!r}: {len(checked)} series; at most {len(PALETTE)} stay distinguishable")
    return Chart(str(title), str(alt).strip(), kind, labels, tuple(checked), (), value_format)


# Drawing. Everything below imports matplotlib, so only when a chart is drawn.


def _style(chart: Chart):
    import matplotlib

    return matplotlib.rc_context(
        {
            "svg.hashsalt": chart.key,  # clip-path ids from this chart only: stable, and distinct per chart
            "svg.id": chart.key,
            "svg.fonttype": "path",
            "text.parse_math": False,
            "font.family": "DejaVu Sans",  # ships with matplotlib, so every machine draws the same; has Hebrew
            "font.size": FONT_SIZE,
            "axes.titlesize": TITLE_SIZE,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.edgecolor": "#555555",
            "axes.labelcolor": "#222222",
            "xtick.color": "#222222",
            "ytick.color": "#222222",
            "grid.color": "#dddddd",
            "legend.frameon": False,
            "legend.fontsize": FONT_SIZE - 1,
            "path.simplify": False,
        }
    )


def _figure_size(chart: Chart) -> tuple[float, float]:
    header = _header_height(chart)
    if chart.horizontal:
        rows = len(chart.labels) * (1 if chart.kind == "stacked" else len(chart.series) * 0.5 + 0.35)
        return WIDTH_INCHES, round(min(18.0, header + 1.0 + 0.42 * max(rows, 1.5)), 2)
    return WIDTH_INCHES, round(header + 3.4, 2)


def _title_lines(chart: Chart) -> list[str]:
    return textwrap.wrap(chart.title, 34) or [" "]


def _legend_rows(chart: Chart) -> int:
    named = [name for name, _ in chart.series if name]
    return math.ceil(len(named) / LEGEND_COLUMNS) if named else 0


def _header_height(chart: Chart) -> float:
    """Inches above the plot: the title's lines, then the legend's rows."""
    return 0.12 + len(_title_lines(chart)) * TITLE_SIZE * 1.35 / 72 + _legend_rows(chart) * FONT_SIZE * 1.55 / 72


def _right_to_left(text: str) -> bool:
    """Whether the first strongly directional character of `text` is right-to-left."""
    for character in text:
        direction = unicodedata.bidirectional(character)
        if direction in ("R", "AL"):
            return True
        if direction == "L":
            return False
    return False


def _text_width(text: str, size: float) -> float:
    """About how wide `text` is in points at font `size` (DejaVu Sans averages 0.62 em)."""
    return len(text) * size * 0.62


def _draw(chart: Chart) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    width, height = _figure_size(chart)
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)  # Agg draws the PNG; the SVG backend is picked by savefig's format
    header = _header_height(chart)
    top, body = figure.subfigures(2, 1, height_ratios=[header, height - header])  # type: ignore[misc]
    rtl = _right_to_left(chart.title)
    side = {"x": 0.98, "ha": "right"} if rtl else {"x": 0.02, "ha": "left"}
    top.text(side["x"], 0.98, "\n".join(_title_lines(chart)), ha=side["ha"], va="top", fontsize=TITLE_SIZE, fontweight="bold", linespacing=1.15)
    axes = body.add_subplot()
    if not chart.labels or not chart.series:
        axes.set_axis_off()
        axes.text(0.5, 0.5, "–", ha="center", va="center", fontsize=TITLE_SIZE * 2, color="#777777")
        return figure
    value_axis = axes.xaxis if chart.horizontal else axes.yaxis
    if chart.value_format is not None:
        value_format = chart.value_format
        value_axis.set_major_formatter(FuncFormatter(lambda value, _position: value_format(value)))
    value_axis.set_major_locator(MaxNLocator(nbins=5, min_n_ticks=2))
    axes.grid(True, axis="x" if chart.horizontal else "y")
    axes.set_axisbelow(True)
    if chart.kind == "line":
        _lines(chart, axes)
    else:
        _bars(chart, axes)
    if chart.horizontal:
        _fit_value_ticks(chart, axes)
    if _legend_rows(chart):
        handles, names = _reading_order(*axes.get_legend_handles_labels(), rtl=rtl)
        top.legend(
            handles,
            names,
            loc="lower right" if rtl else "lower left",
            bbox_to_anchor=(0.99, 0.0) if rtl else (0.01, 0.0),
            ncols=LEGEND_COLUMNS,
            handlelength=2.2,
            borderaxespad=0.1,
            markerfirst=not rtl,
        )
    return figure


def _reading_order(handles: list, names: list[str], *, rtl: bool) -> tuple[list, list[str]]:
    """Legend entries placed so they read in rows, the first series first: from the left,
    or from the right in a right-to-left title. (matplotlib fills a legend's columns first.)"""
    from matplotlib.patches import Rectangle

    rows = math.ceil(len(handles) / LEGEND_COLUMNS)
    placed_handles, placed_names = [], []
    for column in range(LEGEND_COLUMNS):
        for row in range(rows):
            index = row * LEGEND_COLUMNS + (LEGEND_COLUMNS - 1 - column if rtl else column)
            if index < len(handles):
                placed_handles.append(handles[index])
                placed_names.append(names[index])
            else:  # a gap keeps the other entries in their places
                placed_handles.append(Rectangle((0, 0), 0, 0, visible=False))
                placed_names.append("")
    return placed_handles, placed_names


def _lines(chart: Chart, axes) -> None:
    positions = list(range(len(chart.labels)))
    for number, (name, values) in enumerate(chart.series):
        ys = [math.nan if value is None else value for value in values]
        (line,) = axes.plot(
            positions,
            ys,
            label=name,
            color=PALETTE[number],
            marker=LINE_MARKERS[number],
            linestyle=LINE_STYLES[number % len(LINE_STYLES)],
            linewidth=2.6,
            markersize=7,
        )
        line.set_gid(f"{chart.key}-series-{number}-0")
    axes.set_xlim(-0.4, len(positions) - 0.6)
    _category_ticks(axes.xaxis, chart.labels)
    low, high = axes.get_ylim()
    axes.set_ylim(min(0, low), high if high > 0 else 1)
    top = axes.get_ylim()[1]
    for order, (index, text) in enumerate(chart.markers):
        axes.axvline(index, color="#444444", linestyle=(0, (4, 3)), linewidth=1.4, gid=f"{chart.key}-marker-{order}")
        right_half = index > (len(positions) - 1) / 2
        axes.annotate(
            text,
            xy=(index, top),
            xytext=(-4 if right_half else 4, -4 - 20 * (order % 3)),
            textcoords="offset points",
            ha="right" if right_half else "left",
            va="top",
            fontsize=FONT_SIZE - 2,
            color="#222222",
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
        )


def _bars(chart: Chart, axes) -> None:
    count = len(chart.series)
    positions = list(range(len(chart.labels)))
    stacked = chart.kind == "stacked"
    width = 0.7 if stacked else 0.8 / count
    base = [0.0] * len(positions)
    for number, (name, raw) in enumerate(chart.series):
        values = [float(value or 0) for value in raw]
        where = positions if stacked else [p - 0.4 + width * (number + 0.5) for p in positions]
        style = {"label": name, "color": PALETTE[number], "edgecolor": "white", "linewidth": 0.8}
        if chart.horizontal:
            bars = axes.barh(where, values, height=width, left=base if stacked else None, **style)
        else:
            bars = axes.bar(where, values, width=width, bottom=base if stacked else None, **style)
        for index, bar in enumerate(bars):
            bar.set_gid(f"{chart.key}-series-{number}-{index}")
        if stacked:
            base = [b + v for b, v in zip(base, values, strict=True)]
        else:
            _value_labels(chart, axes, bars, values, width)
    if stacked:
        if chart.horizontal:
            totals = axes.barh(positions, base, height=width, alpha=0)
        else:
            totals = axes.bar(positions, base, width=width, alpha=0)
        _value_labels(chart, axes, totals, base, width)
    if chart.horizontal:
        shown = [_short(label) for label in chart.labels]
        axes.set_yticks(positions, shown)
        axes.invert_yaxis()  # the first label on top, as it is read
        axes.margins(x=0.22)
    else:
        _category_ticks(axes.xaxis, chart.labels)
        axes.margins(y=0.12)


def _fit_value_ticks(chart: Chart, axes) -> None:
    """As many value ticks under horizontal bars as fit side by side once formatted (money
    is wide: "1 200,00 kr"), beside the column of category labels."""
    from matplotlib.ticker import MaxNLocator

    shown = chart.value_format or _plain
    labels_width = max((_text_width(line, FONT_SIZE) for label in chart.labels for line in _short(label).splitlines()), default=0)
    room = WIDTH_INCHES * 72 - 30 - labels_width
    low, high = axes.get_xlim()
    for bins in (5, 4, 3, 2, 1):
        locator = MaxNLocator(nbins=bins, min_n_ticks=1)
        ticks = [tick for tick in locator.tick_values(low, high) if low <= tick <= high]
        needed = sum(_text_width(shown(tick), FONT_SIZE) + 14 for tick in ticks)
        if needed <= room or bins == 1:
            axes.xaxis.set_major_locator(locator)
            return


def _short(label: str) -> str:
    """A category label in at most three lines of 14 characters (client names, addresses)."""
    return "\n".join(textwrap.wrap(label, 14, break_long_words=True, max_lines=3, placeholder="…")) or label


def _value_labels(chart: Chart, axes, bars, values: list[float], width: float) -> None:
    """The value at the end of each bar, where there is room for it: always beside a
    horizontal bar, above a column only when the text is narrower than the column."""
    shown = chart.value_format or _plain
    texts = [shown(value) if value else "" for value in values]
    if not chart.horizontal:
        column = PLOT_WIDTH_POINTS / max(1, len(chart.labels)) * width
        if any(_text_width(text, FONT_SIZE - 3) > column for text in texts):
            return
    axes.bar_label(bars, labels=texts, padding=3, fontsize=FONT_SIZE - 3, color="#222222")


def _plain(value: float) -> str:
    return f"{value:g}"


def _category_ticks(axis, labels: tuple[str, ...]) -> None:
    """As many labels under the plot as fit side by side; every n-th, counted back from the
    last, so the latest (the month reported) always shows."""
    widest = max((_text_width(label, FONT_SIZE) for label in labels), default=1.0) + 12
    fitting = max(1, min(MAX_X_LABELS, int(PLOT_WIDTH_POINTS // widest)))
    step = max(1, math.ceil(len(labels) / fitting))
    shown = [index for index in range(len(labels)) if (len(labels) - 1 - index) % step == 0]
    axis.set_ticks(shown, [labels[index] for index in shown])


_ROOT = re.compile(r"<svg\b[^>]*>", re.S)


def _inline_svg(document: str, chart: Chart) -> str:
    start = document.index("<svg")
    svg = document[start:]
    root = _ROOT.match(svg)
    assert root is not None, "matplotlib writes an <svg> root"
    view_box = re.search(r'viewBox="([^"]+)"', root.group(0))
    assert view_box is not None, "matplotlib writes a viewBox"
    opening = (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1" '
        f'id="{chart.key}" viewBox="{view_box.group(1)}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'role="img" aria-labelledby="{chart.key}-title" style="max-width:100%;height:auto;display:block">'
        f'<title id="{chart.key}-title">{escape(chart.alt)}</title>'
    )
    body = svg[root.end():]
    body = re.sub(r"<metadata>.*?</metadata>\s*", "", body, flags=re.S)
    # Every id and reference of this chart carries its key, and its stylesheet applies to it
    # alone: two charts inline in one page share neither ids nor styles.
    prefix = f"{chart.key}-"

    def own(name: str) -> str:
        return name if name.startswith(chart.key) else prefix + name

    body = re.sub(r'\bid="([^"]+)"', lambda match: f'id="{own(match.group(1))}"', body)
    body = re.sub(r"url\(#([^)]+)\)", lambda match: f"url(#{own(match.group(1))})", body)
    body = re.sub(r'href="#([^"]+)"', lambda match: f'href="#{own(match.group(1))}"', body)
    body = body.replace("*{stroke-linejoin", f"#{chart.key} *{{stroke-linejoin")
    return opening + body.strip() + "\n"


__all__ = ["Chart", "ChartError", "line_chart", "stacked_bars", "grouped_bars", "PALETTE", "PNG_WIDTH", "PNG_SCALE"]
