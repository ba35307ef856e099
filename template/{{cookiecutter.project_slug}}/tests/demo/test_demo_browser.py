"""A person's view: a real headless Chromium types a question, clicks Ask and reads the answer.

Skipped with the reason when Playwright or Chromium is missing; REQUIRE_BROWSER=1 (set in CI,
where Chromium is installed) turns that skip into a failure. Screenshots land in test-artefacts/
(or $TEST_ARTEFACTS).
"""

import os
import re

import pytest

from {{ cookiecutter.package_name }}.demo import browser_ask, find_chromium

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def chromium():
    """The Chromium executable; checked first, so a missing browser skips before any server."""
    reason = None
    try:
        import playwright  # noqa: F401
    except ImportError:
        reason = "Playwright for Python is not installed (pip install playwright)"
    else:
        if find_chromium() is None:
            reason = "no Chromium found (apt-get install chromium, or set CHROMIUM=/path)"
    if reason is None:
        return find_chromium()
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def test_browser_ask_shows_an_answer_citing_a_source(chromium, server, pipeline, artefacts):
    shot = artefacts / "demo-ask.png"
    answer = browser_ask(server, "Which port does the demo listen on by default?", shot)
    assert "7860" in answer and "demo.md" in answer
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_browser_generate_streams_text(chromium, server, artefacts):
    from playwright.sync_api import expect, sync_playwright

    from {{ cookiecutter.package_name }}.demo import CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server)
            page.get_by_role("tab", name="Generate").click()
            page.get_by_label("Prompt").fill("The demo ")
            page.get_by_role("button", name="Generate", exact=True).click()
            output = page.get_by_label("Generated text")
            expect(output).to_have_value(re.compile(r"^The demo .+"), timeout=30_000)
            page.screenshot(path=artefacts / "demo-generate.png")
        finally:
            browser.close()
