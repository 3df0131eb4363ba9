"""`main.py simulate --out what-if.html` as a separate process on the example practice, the
page then opened in a real headless Chromium (tests/support/browser.py) at a phone's width
and a desktop's: every chart renders, nothing is wider than the phone."""

from __future__ import annotations

import io
import shutil
import stat

import pytest
from PIL import Image

from tests.support.browser import DESKTOP, PHONE
from tests.support.cli import NOW, ROOT, main

pytestmark = pytest.mark.timeout(300)
PROPOSED = "late_cancel,no_show,first_offense_grace"


@pytest.fixture(scope="module")
def practice(tmp_path_factory):
    folder = tmp_path_factory.mktemp("practice")
    shutil.copytree(ROOT / "config", folder / "config")
    main(folder, "run", "--once", "--now", NOW)
    return folder


def test_simulate_out_writes_a_private_page_and_keeps_an_existing_one(practice):
    out = practice / "what-if.html"
    result = main(practice, "simulate", "--from", "2026-11-16", "--to", "2026-11-29", "--policies", PROPOSED, "--out", str(out))
    assert f"wrote {out}" in result.stdout and "Policies: late_cancel, no_show, first_offense_grace" in result.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600, "it names clients: readable only by the practitioner"
    html = out.read_text("utf-8")
    assert html.count("<svg") == 3 and "first_offense_grace" in html and "bjorn@example.com" in html
    before = out.read_bytes()
    again = main(practice, "simulate", "--from", "2026-11-16", "--to", "2026-11-29", "--out", str(out), check=False)
    assert again.returncode == 1 and "exists; add --force" in again.stderr
    assert out.read_bytes() == before
    main(practice, "simulate", "--from", "2026-11-16", "--to", "2026-11-29", "--policies", PROPOSED, "--out", str(out), "--force", "--json")
    assert out.read_bytes() == before, "the same simulation draws the same page, byte for byte"


@pytest.fixture(scope="module")
def page_file(practice):
    out = practice / "page.html"
    main(practice, "simulate", "--from", "2026-11-16", "--to", "2026-11-29", "--policies", PROPOSED, "--out", str(out))
    return out


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_the_what_if_page_renders_in_a_browser_without_overflow(page_file, browser, width, tmp_path):
    with browser.open(page_file, width=width) as page:
        assert page.all_images_loaded(), page.broken_images()
        sizes = page.svg_sizes()
        assert len(sizes) == 3 and all(w > width * 0.3 and h > 100 for w, h in sizes), sizes
        assert all(w <= width for w, _ in sizes)
        assert not page.overflows(), page.overflowing_elements()
        assert page.evaluate("document.querySelectorAll('svg[role=img] > title').length") == 3
        shot = Image.open(io.BytesIO(page.screenshot(tmp_path / f"what-if-{width}.png")))
        assert shot.size[0] == width and shot.size[1] > 1000
