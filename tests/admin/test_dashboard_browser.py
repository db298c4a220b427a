"""The dashboard in a real headless browser: Debian's chromium, driven by Playwright's
Python package (its own browser builds are never downloaded), against pytest-django's
live server. A staff user logs in through the admin's form and opens the dashboard; the
page must load without a console error and show its charts and numbers. A screenshot is
kept under the test run's temporary folder (its path is printed)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .conftest import tally

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

MISSING = "chromium is not installed (apt-get install chromium; .ci/run installs it)"


def chromium_or_skip() -> str:
    """The browser, or a skip on a developer's machine without it; in CI (``CI`` set, as
    ``.ci/run`` sets it) a missing browser fails the run: the check must never vanish."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{MISSING}; CI must run the browser check", pytrace=False)
    pytest.skip(MISSING)


def test_a_missing_chromium_fails_in_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setattr(f"{__name__}.CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser check"):
        chromium_or_skip()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        chromium_or_skip()


@pytest.fixture
def busy_day(known):
    """A day of inbox traffic on top of the known records, so every chart has bars."""
    for hours_ago in range(1, 23):
        if hours_ago == 2:
            continue  # the known data's hour
        tally(hours_ago, "accepted", 40 + (hours_ago * 37) % 90)
        if hours_ago % 3 == 0:
            tally(hours_ago, "bad_signature", 5 + hours_ago % 7)
        if hours_ago % 4 == 1:
            tally(hours_ago, "date_out_of_window", 3 + hours_ago % 5)
        if hours_ago % 5 == 0:
            tally(hours_ago, "key_unavailable", 12)
    return known


def no_page_asked(url: str) -> bool:
    # The admin's login and index name no icon, so the browser's own guess at /favicon.ico
    # is a 404 that no page asked for (the dashboard names an empty one).
    return url.endswith("/favicon.ico")


def failed_response(response, problems: list[str]) -> None:
    if response.status >= 400 and not no_page_asked(response.url):
        problems.append(f"HTTP {response.status} {response.url}")


def console_error(message, problems: list[str]) -> None:
    if message.type == "error" and not no_page_asked(message.location.get("url", "")):
        problems.append(f"console {message.type}: {message.text} at {message.location}")


def test_the_dashboard_renders_in_chromium(live_server, operator, busy_day, tmp_path_factory):
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    screenshot = tmp_path_factory.mktemp("dashboard") / "dashboard.png"
    problems: list[str] = []
    with sync_playwright() as playwright:
        # A fresh --user-data-dir: Playwright takes it as the persistent context's folder.
        browser = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium,
            args=FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = browser.new_page()
            page.on("console", lambda m: console_error(m, problems))
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("response", lambda r: failed_response(r, problems))
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", operator.username)
            page.fill("#id_password", "pw-for-tests")
            page.click("input[type=submit]")
            page.wait_for_url(f"{live_server.url}/admin/")
            page.click("#fedsx-dashboard-link caption a")
            page.wait_for_url(f"{live_server.url}/admin/fedsx/dashboard/")
            assert page.title().startswith("Federation dashboard")

            charts = page.locator("svg.fedsx-chart")
            assert charts.count() == 4
            for i in range(4):
                box = charts.nth(i).bounding_box()
                assert box and box["width"] > 200 and box["height"] > 50, box
            # The inbox chart: one column segment per hour and outcome, each a link.
            segments = page.locator("#fedsx-inbox svg a rect")
            assert segments.count() > 24
            tiles = page.locator(".fedsx-tiles li")
            assert tiles.nth(0).inner_text().split()[0] == str(
                busy_day["accepted"] + sum(40 + (h * 37) % 90 for h in range(1, 23) if h != 2)
            )
            hosts = page.locator("#fedsx-hosts tbody tr")
            assert hosts.count() == 3
            assert hosts.first.inner_text().startswith("gone.example")
            held = page.locator("#fedsx-deliveries a", has_text="held").first
            assert held.locator("text.number").text_content() == "4"
            page.screenshot(path=str(screenshot), full_page=True)

            # A number leads to the list it counts.
            held.click()
            page.wait_for_url("**/admin/fedsx/delivery/?status__exact=held")
            assert "4 deliveries" in page.locator("#changelist-form").inner_text() or (
                page.locator("#result_list tbody tr").count() == 4
            )
        finally:
            browser.close()
    print(f"\ndashboard screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000
    assert problems == []
