"""The HTML report in a real headless browser (Debian's chromium via Selenium): it renders, its charts show.

Nothing is downloaded: Selenium is pointed at /usr/bin/chromium and /usr/bin/chromedriver, as
tests/serve/test_web.py does (`apt-get install chromium chromium-driver`; .ci/run installs them).
Without them the test is skipped, saying so. APPKIT_REPORT_SCREENSHOT=PATH keeps a screenshot.
"""

from __future__ import annotations

import os
import shutil

import pytest

from appkit.config import load_settings
from appkit.insights.charts import render_charts
from appkit.insights.html import write_html
from appkit.insights.period import parse_period
from appkit.insights.reference import Reference
from appkit.insights.report import build_report
from tests.insights.history import KNOWN, NEW, conversation, days_ago, reference_texts

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("the browser test needs Debian's chromium and chromedriver "
                    "(apt-get install -y chromium chromium-driver); they are not installed here")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def report_file(tmp_path):
    from appkit.store import open_store

    settings = load_settings(home=tmp_path / "home")
    with open_store(settings) as store:
        rng_days = [0, 1, 2, 3, 5]
        for n, (intent, wordings) in enumerate(KNOWN.items()):
            for i, w in enumerate(wordings):
                conversation(store, [w, "thanks"], model="support-v1" if i % 2 else "support-v2",
                             latency=150 + 40 * i, rating=1 if i % 3 else -1, moods=[0.0, 0.2 + 0.1 * n],
                             when=days_ago(rng_days[(i + n) % len(rng_days)]))
        for i, w in enumerate(NEW):
            last = conversation(store, [w], handoff="low_confidence", agent="Done.", when=days_ago(i % 3))
        store.record_moderation("support", "input", "lexicon", "flag", {"insult": 0.7}, conversation_id=last)
        texts, labels, held = reference_texts()
        report = build_report("support", parse_period("7d"), settings=settings, store=store,
                              reference=Reference("support-v2", texts, labels, held, "model support-v2 (test)"))
    path = tmp_path / "report.html"
    write_html(report, render_charts(report), path)
    return path


def test_the_html_report_renders_with_every_chart_visible(browser, report_file):
    from selenium.webdriver.common.by import By

    browser.get(report_file.as_uri())
    assert browser.title.startswith("support report")
    headline = browser.find_element(By.ID, "headline").text
    assert headline.startswith("24 conversations; 75% resolved; 25% handed over")
    warning = browser.find_element(By.ID, "drift-warning")
    assert warning.is_displayed() and "unlike the training data" in warning.text
    for section in ("models", "days", "handoffs", "sentiment", "safety", "topics", "gaps", "drift"):
        assert browser.find_element(By.ID, section).is_displayed(), section
    charts = browser.find_elements(By.CSS_SELECTOR, "img.chart")
    assert {c.get_attribute("id") for c in charts} == {"chart-models", "chart-volume", "chart-latency_mood",
                                                        "chart-topics", "chart-drift"}
    for chart in charts:
        browser.execute_script("arguments[0].scrollIntoView()", chart)
        decoded = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", chart)
        assert decoded and decoded > 300, chart.get_attribute("id")  # the PNG decoded
        assert chart.size["height"] > 100 and chart.size["width"] > 300  # and takes room on the page
    gaps = browser.find_element(By.ID, "gaps").text
    assert "subscription" in gaps and "(new)" in gaps
    shot = os.environ.get("APPKIT_REPORT_SCREENSHOT")
    browser.execute_script("window.scrollTo(0, 0)")
    if shot:
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1200, min(height + 100, 6000))
        browser.save_screenshot(shot)
    assert browser.get_screenshot_as_png().startswith(b"\x89PNG")
