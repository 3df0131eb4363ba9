#!/usr/bin/env python3
"""Benchmark of the charts (slotguard/reports/charts.py): what the monthly report's and the
what-if page's charts cost to draw.

Times, in a fresh process: importing the chart module (matplotlib is not imported yet),
then importing matplotlib, then for each of the report's kinds of chart (12 months of rates
as lines with a marker; 12 months of fees in 6 stacked layers; 25 clients in grouped bars)
building the figure and writing the SVG, then the PNG from the same figure. Only numbers are
printed; nothing is asserted.

Usage: .venv/bin/python bench/bench_charts.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="draw each chart this many times (fresh Chart each time)")
    args = parser.parse_args()
    started = time.perf_counter()
    from slotguard.reports.charts import grouped_bars, line_chart, stacked_bars

    module = time.perf_counter()
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.backends.backend_svg  # noqa: F401
    import matplotlib.figure  # noqa: F401

    imported = time.perf_counter()
    print(f"import slotguard.reports.charts: {module - started:.3f} s (matplotlib not loaded)")
    print(f"import matplotlib (figure, Agg, SVG): {imported - module:.3f} s")
    months = [f"{name} 2026" for name in "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()]
    layers = ["proposed", "waived", "charged", "collected", "written off", "open"]
    clients = [f"client{number}@example.com" for number in range(25)]
    builders = {
        "line, 12 months x 2 series, 1 marker": lambda: line_chart(
            "No-shows and late cancellations", months, {"no-show": [0.05 + 0.01 * (m % 3) for m in range(12)], "late": [0.1] * 12},
            markers=[(4, "policy enabled")], alt="rates"),
        "stacked, 12 months x 6 layers": lambda: stacked_bars(
            "Fees per month", months, {layer: [1000 * (m + n) for m in range(12)] for n, layer in enumerate(layers)}, alt="fees"),
        "grouped, 25 clients x 2 series": lambda: grouped_bars(
            "Fees per client", clients, {"now": [450 * (c % 4) for c in range(25)], "proposed": [450 * (c % 3) for c in range(25)]}, alt="clients"),
    }
    total = 0.0
    for name, build in builders.items():
        svg_times, png_times, sizes = [], [], (0, 0)
        for _ in range(args.repeat):
            chart = build()
            first = time.perf_counter()
            svg = chart.svg()
            second = time.perf_counter()
            png = chart.png()
            third = time.perf_counter()
            svg_times.append(second - first)
            png_times.append(third - second)
            sizes = (len(svg), len(png))
        best_svg, best_png = min(svg_times), min(png_times)
        total += best_svg + best_png
        print(f"{name}: SVG (with building the figure) {best_svg:.3f} s, {sizes[0] // 1024} KiB; "
              f"PNG from the same figure {best_png:.3f} s, {sizes[1] // 1024} KiB (best of {args.repeat})")
    print(f"the three charts, both formats: {total:.3f} s; with the imports: {total + imported - started:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
