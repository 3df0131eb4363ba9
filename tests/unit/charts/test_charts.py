"""slotguard/reports/charts.py: the SVG parses and holds each series, the PNG decodes at its
size, the alt text is there, the output is the same bytes every time, Hebrew reads from the
right, and building a chart does not import matplotlib."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from babel.numbers import format_currency, format_percent
from PIL import Image

from slotguard.reports.charts import PALETTE, PNG_SCALE, PNG_WIDTH, ChartError, grouped_bars, line_chart, stacked_bars

SVG = "{http://www.w3.org/2000/svg}"
ROOT = Path(__file__).resolve().parents[3]
MONTHS = ["Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov"]


def rates_chart(**extra):
    return line_chart(
        "No-shows and late cancellations",
        MONTHS,
        {
            "no-show": [0.10, 0.12, None, 0.09, 0.08, 0.07, 0.05, 0.06, 0.04, 0.05, 0.03, 0.02],
            "late cancellation": [0.2, 0.18, 0.15, 0.16, 0.12, 0.1, 0.1, 0.09, 0.08, 0.07, 0.07, 0.05],
        },
        markers=[(4, "policy enabled")],
        value_format=lambda value: format_percent(value, locale="en"),
        alt="No-shows fell from 10 % to 2 % after the policy was enabled in April.",
        **extra,
    )


def fees_chart():
    return stacked_bars(
        "Fees per month",
        MONTHS[:4],
        {"collected": [4500, 9000, 0, 4500], "waived": [0, 4500, 4500, 0], "written off": [0, 0, 0, 900]},
        value_format=lambda value: format_currency(value, "NOK", locale="nb"),
        alt="Fees collected, waived and written off, December to March.",
    )


def clients_chart(labels=("anna@example.com", "bob@example.com", "carla@example.com")):
    return grouped_bars(
        "Fees per client",
        list(labels),
        {"current policies": [450, 0, 900], "proposed policies": [0, 450, 900]},
        alt="What each client would have paid under each set of policies.",
    )


def parsed(chart):
    text = chart.svg()
    return text, ET.fromstring(text)


def ids(root) -> set[str]:
    return {element.get("id") for element in root.iter() if element.get("id")}


def test_the_svg_is_an_inline_element_that_scales_and_names_itself_by_the_alt_text():
    chart = rates_chart()
    text, root = parsed(chart)
    assert text.startswith("<svg"), "no XML prolog or doctype: it goes inside HTML"
    assert "<!DOCTYPE" not in text and "<?xml" not in text
    assert root.tag == f"{SVG}svg"
    assert root.get("width") == "100%" and root.get("height") is None
    width, height = (float(number) for number in root.get("viewBox").split()[2:])
    assert width > 0 and height > 0
    assert root.get("role") == "img"
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == chart.alt
    assert root.get("aria-labelledby") == title.get("id")


def test_each_series_of_a_line_chart_is_a_line_and_a_gap_breaks_it():
    chart = rates_chart()
    _, root = parsed(chart)
    found = ids(root)
    for number in range(2):
        assert f"{chart.key}-series-{number}-0" in found
    no_show = root.find(f".//*[@id='{chart.key}-series-0-0']")
    path = no_show.find(f"{SVG}path")
    # The None in February splits the no-show line in two pieces: two "move to" commands.
    assert path.get("d").count("M") == 2
    late = root.find(f".//*[@id='{chart.key}-series-1-0']").find(f"{SVG}path")
    assert late.get("d").count("M") == 1
    assert f"{chart.key}-marker-0" in found
    assert PALETTE[0].lower() in path.get("style").lower()


@pytest.mark.parametrize("build, bars", [(fees_chart, 3 * 4), (clients_chart, 2 * 3)])
def test_a_bar_chart_has_a_bar_for_every_value_of_every_series(build, bars):
    chart = build()
    _, root = parsed(chart)
    series_bars = [name for name in ids(root) if re.fullmatch(rf"{chart.key}-series-\d+-\d+", name)]
    assert len(series_bars) == bars
    colours = {PALETTE[number].lower() for number in range(len(chart.series))}
    styles = " ".join(element.get("style", "") for element in root.iter()).lower()
    assert all(colour in styles for colour in colours)


def test_two_charts_in_one_page_share_no_id_and_their_styles_stay_inside_them():
    first, second = parsed(rates_chart())[1], parsed(fees_chart())[1]
    assert not ids(first) & ids(second)
    for root in (first, second):
        for style in root.iter(f"{SVG}style"):
            for rule in re.findall(r"([^{}]+)\{", style.text):
                assert rule.strip().startswith(f"#{root.get('id')}"), rule
        references = re.findall(r'(?:url\(|href=")#([\w.-]+)', ET.tostring(root, encoding="unicode"))
        assert references and all(name.startswith(root.get("id")) for name in references)


def test_the_png_decodes_at_twice_its_css_width():
    for chart in (rates_chart(), fees_chart(), clients_chart()):
        image = Image.open(io.BytesIO(chart.png()))
        image.load()
        assert image.format == "PNG"
        width, height = chart.png_size()
        assert width == PNG_WIDTH
        assert image.size[0] == PNG_WIDTH * PNG_SCALE
        assert abs(image.size[1] - height * PNG_SCALE) <= PNG_SCALE
        # the first series' colour is drawn
        rgb = tuple(int(PALETTE[0][index : index + 2], 16) for index in (1, 3, 5))
        assert rgb in {colour for _, colour in image.convert("RGB").getcolors(1 << 20)}


def test_long_client_lists_grow_the_chart_downwards_not_sideways():
    few = clients_chart()
    many = grouped_bars(
        "Fees per client",
        [f"client-{number}@example.com" for number in range(12)],
        {"current": [100 * number for number in range(12)], "proposed": [50 * number for number in range(12)]},
        alt="twelve clients",
    )
    assert many.horizontal and few.horizontal
    assert many.png_size()[0] == few.png_size()[0] == PNG_WIDTH
    assert many.png_size()[1] > few.png_size()[1]


def test_the_value_format_labels_the_value_axis():
    seen = []

    def money(value):
        seen.append(value)
        return f"NOK {value:.0f}"

    chart = stacked_bars("Fees", ["Oct", "Nov"], {"charged": [100, 250]}, value_format=money, alt="fees")
    chart.svg()
    assert seen, "the caller's formatter writes the axis labels"
    assert max(seen) >= 250


def test_same_chart_same_bytes_even_in_another_process():
    here = hashlib.sha256(rates_chart().svg().encode() + rates_chart().png()).hexdigest()
    assert rates_chart().svg() == rates_chart().svg()
    script = (
        "import hashlib, sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2]);"
        "from test_charts import rates_chart;"
        "print(hashlib.sha256(rates_chart().svg().encode() + rates_chart().png()).hexdigest())"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT), str(Path(__file__).parent)],
        capture_output=True, text=True, env=environment, timeout=120, check=True,
    )
    assert done.stdout.strip() == here


def test_the_bytes_do_not_depend_on_which_format_is_asked_first_or_how_often():
    first, second = fees_chart(), fees_chart()
    svg, png = first.svg(), first.png()
    assert second.png() == png and second.svg() == svg
    assert first.svg() == svg and first.png() == png


def test_labels_are_text_not_mathtext():
    chart = grouped_bars("Fees in $", ["$x$", "$5 or $6"], {"fees": [1, 2]}, alt="dollars")
    text = chart.svg()
    assert "Oblique" not in text and "Cmmi" not in text.lower() and "stix" not in text.lower()


def ink_columns(png: bytes, top: int, bottom: int) -> tuple[int, int]:
    image = Image.open(io.BytesIO(png)).convert("L").crop((0, top, PNG_WIDTH * PNG_SCALE, bottom))
    dark = [x for x in range(image.width) if min(image.getpixel((x, y)) for y in range(image.height)) < 100]
    return min(dark), max(dark)


def test_a_hebrew_title_is_set_from_the_right_and_a_latin_one_from_the_left():
    series = {"נוכחי": [450, 0, 900], "מוצע": [0, 450, 900]}
    hebrew = grouped_bars("דמי ביטול לפי חודש", ["ינו׳", "פבר׳", "מרץ"], series, alt="דמי ביטול")
    latin = grouped_bars("Fees by month", ["Jan", "Feb", "Mar"], {"now": [1, 2, 3]}, alt="fees")
    left, right = ink_columns(hebrew.png(), 0, 60)
    assert left > PNG_WIDTH * PNG_SCALE / 2 and right > PNG_WIDTH * PNG_SCALE * 0.9
    left, right = ink_columns(latin.png(), 0, 60)
    assert left < PNG_WIDTH * PNG_SCALE * 0.1 and right < PNG_WIDTH * PNG_SCALE / 2


def test_what_cannot_be_drawn_is_refused_with_the_reason():
    with pytest.raises(ChartError, match="alt text"):
        line_chart("t", ["a"], {"s": [1]}, alt=" ")
    with pytest.raises(ChartError, match="2 values for 3 labels"):
        grouped_bars("t", ["a", "b", "c"], {"s": [1, 2]}, alt="x")
    with pytest.raises(ChartError, match="outside"):
        line_chart("t", ["a", "b"], {"s": [1, 2]}, markers=[(2, "late")], alt="x")
    with pytest.raises(ChartError, match="negative"):
        stacked_bars("t", ["a"], {"s": [-1]}, alt="x")
    with pytest.raises(ChartError, match="not a number"):
        grouped_bars("t", ["a"], {"s": [None]}, alt="x")
    with pytest.raises(ChartError, match="not a number"):
        line_chart("t", ["a"], {"s": [float("nan")]}, alt="x")


def test_an_empty_chart_still_draws():
    chart = line_chart("Nothing yet", [], {}, alt="no appointments yet")
    assert ET.fromstring(chart.svg()).find(f"{SVG}title").text == "no appointments yet"
    assert Image.open(io.BytesIO(chart.png())).size[0] == PNG_WIDTH * PNG_SCALE


def test_building_a_chart_does_not_import_matplotlib():
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from slotguard.reports.charts import line_chart;"
        "line_chart('t', ['a'], {'s': [1]}, alt='x');"
        "import slotguard.cli.main; slotguard.cli.main.build_parser();"  # every command's module, as main.py loads them
        "print('matplotlib' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"
