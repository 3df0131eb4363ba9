"""tests/support/browser.py against the real Chromium: it sees what a person would see (a
broken image, a page wider than the phone, an email's cid: images), and the charts of
slotguard/reports/charts.py render in it at phone and desktop widths."""

from __future__ import annotations

import io
from email.message import EmailMessage

import pytest
from PIL import Image

from slotguard.reports.charts import grouped_bars, line_chart
from tests.support.browser import DESKTOP, PHONE, BrowserError, email_html

pytestmark = pytest.mark.timeout(180)

HEAD = '<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"></head>'


def png_bytes(width=8, height=4, colour=(0, 114, 178)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_missing_image_and_a_too_wide_block_are_seen(browser, tmp_path):
    (tmp_path / "here.png").write_bytes(png_bytes())
    page_file = tmp_path / "page.html"
    page_file.write_text(HEAD + '<body><img src="here.png" alt="here"><img src="gone.png" alt="gone"><div id="wide" style="width:500px">x</div></body></html>')
    with browser.open(page_file, width=PHONE) as page:
        assert [image.natural_width for image in page.images()] == [8, 0]
        assert page.broken_images() == [(tmp_path / "gone.png").as_uri()]
        assert not page.all_images_loaded()
        assert page.overflows()
        assert any(element.startswith("div#wide") for element in page.overflowing_elements())
    with browser.open(page_file, width=DESKTOP) as page:
        assert not page.overflows(), "500 px fits a desktop window"


def test_a_page_without_a_viewport_overflows_a_phone_as_phones_lay_it_out_980_wide(browser):
    with browser.open_html("<!doctype html><html><body><p>text</p></body></html>", width=PHONE) as page:
        assert page.evaluate("document.documentElement.clientWidth") == 980
        assert page.overflows()
    with browser.open_html(HEAD + "<body><p>text</p></body></html>", width=PHONE) as page:
        assert page.evaluate("document.documentElement.clientWidth") == PHONE
        assert not page.overflows()


def test_a_screenshot_is_a_png_of_the_whole_page_at_the_window_width(browser, tmp_path):
    html = HEAD + '<body style="margin:0"><div style="height:2000px;background:#0072B2"></div></body></html>'
    with browser.open_html(html, width=PHONE) as page:
        data = page.screenshot(tmp_path / "shot.png")
    image = Image.open(io.BytesIO(data))
    assert image.size == (PHONE, 2000)
    assert image.convert("RGB").getpixel((PHONE // 2, 1000)) == (0, 114, 178)
    assert (tmp_path / "shot.png").read_bytes() == data


def related_email(*, attach: bool) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "Report"
    message.set_content("plain text")
    message.add_alternative(HEAD + '<body><p>Your month</p><img src="cid:chart-1@slotguard" alt="chart" width="300">'
                            '<img src="cid:chart-1%40slotguard" alt="same, encoded" width="300"></body></html>', subtype="html")
    if attach:
        html_part = message.get_payload()[1]
        html_part.add_related(png_bytes(600, 300), maintype="image", subtype="png", cid="<chart-1@slotguard>")
    return message


def test_an_email_shows_its_inline_images_only_when_the_related_part_carries_them(browser):
    with browser.open_email(related_email(attach=True).as_bytes()) as page:
        assert page.unresolved_cids == []
        assert [(image.natural_width, image.alt) for image in page.images()] == [(600, "chart"), (600, "same, encoded")]
        assert not page.overflows()
        assert page.text().strip() == "Your month"
    with browser.open_email(related_email(attach=False)) as page:
        assert page.unresolved_cids == ["chart-1@slotguard", "chart-1%40slotguard"]
        assert page.broken_images() == ["cid:chart-1@slotguard", "cid:chart-1%40slotguard"]


def test_an_email_without_html_is_refused():
    message = EmailMessage()
    message.set_content("only text")
    with pytest.raises(BrowserError, match="no text/html"):
        email_html(message)


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_charts_render_inline_and_as_images_without_overflow(browser, width):
    rates = line_chart("Rates", ["Oct", "Nov"], {"no-show": [0.1, 0.05]}, markers=[(1, "policy")], alt="rates fell")
    clients = grouped_bars("Fees per client", ["anna@example.com", "שלום"], {"now": [1, 2], "then": [2, 1]}, alt="fees per client")
    import base64

    image = base64.b64encode(clients.png()).decode("ascii")
    html = (
        HEAD + '<body style="margin:0;padding:8px"><figure style="margin:0">' + rates.svg() + "</figure>"
        f'<img src="data:image/png;base64,{image}" alt="{clients.alt}" style="max-width:100%;height:auto" width="{clients.png_size()[0]}"></body></html>'
    )
    with browser.open_html(html, width=width) as page:
        assert page.all_images_loaded()
        [(svg_width, svg_height)] = page.svg_sizes()
        assert svg_width == pytest.approx(width - 16, abs=1) and svg_height > svg_width / 3
        assert not page.overflows(), page.overflowing_elements()
        assert page.evaluate("document.querySelector('svg').getAttribute('aria-labelledby') && document.querySelector('svg title').textContent") == "rates fell"
