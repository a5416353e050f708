"""The operator's console in headless Chromium, against a hub serving the demo's cell (SQLite).

One hub process serves the module; tests that change the store (verify, drop) compare with the
store as it is at the time. Every number a page shows is read back from the store itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import aiohttp
import pytest
from browser import available, chromium, log_in, metric, wait_for
from democell import OPERATOR, PASSWORD, DemoCell, create, populate
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from livcr_exchange.audit.leaves import DeliveryDropped, DropReason, decode_leaf

pytestmark = pytest.mark.skipif(not available(), reason="needs chromium and chromium-driver")
PAGES = ("/", "/participants", "/log", "/refusals", "/retention", "/deliveries")


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoCell]:
    demo = create(tmp_path_factory.mktemp("console") / "cell")
    demo.hub.start()
    try:
        populate(demo)
        wait_for(lambda: demo.sql("SELECT COUNT(*) FROM checkpoints")[0][0] > 0, "a checkpoint")
        yield demo
    finally:
        demo.hub.stop()


@pytest.fixture(scope="module")
def driver(cell: DemoCell) -> Iterator[webdriver.Chrome]:
    with chromium() as browser:
        log_in(browser, cell.console_url, OPERATOR, PASSWORD)
        wait_for(lambda: browser.current_url.rstrip("/") == cell.console_url, "the overview")
        yield browser


def test_a_wrong_password_is_refused(cell: DemoCell) -> None:
    with chromium() as browser:
        log_in(browser, cell.console_url, OPERATOR, "not the password at all")
        assert browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
        assert browser.current_url.endswith("/login")
        browser.get(cell.console_url + "/participants")
        assert browser.current_url.endswith("/login")  # no session: back to the login page


def test_overview_matches_the_store(cell: DemoCell, driver: webdriver.Chrome) -> None:
    driver.get(cell.console_url + "/")
    assert int(metric(driver, "pending-total")) == cell.sql("SELECT COUNT(*) FROM deliveries")[0][0]
    assert int(metric(driver, "log-size")) == cell.sql("SELECT COUNT(*) FROM leaves")[0][0]
    assert (
        int(metric(driver, "checkpoint-size"))
        == cell.sql("SELECT MAX(size) FROM checkpoints")[0][0]
    )
    assert (
        int(metric(driver, "refusals-24h")) == cell.sql("SELECT COUNT(*) FROM refusals")[0][0] > 0
    )
    assert int(metric(driver, "cosignatures")) == 0  # no witness cosigns this cell's checkpoints
    assert metric(driver, "store").startswith("sqlite")


def test_participants_match_the_store(cell: DemoCell, driver: webdriver.Chrome) -> None:
    driver.get(cell.console_url + "/participants")
    waiting = dict(cell.sql("SELECT recipient_id, COUNT(*) FROM deliveries GROUP BY recipient_id"))
    for pid, count in waiting.items():
        assert driver.find_element(By.CSS_SELECTOR, f'[data-pending="{pid}"]').text == str(count)
    rows = driver.find_elements(By.CSS_SELECTOR, "table[data-table=participants] tbody tr")
    enrolled = {
        r[0] for r in cell.sql("SELECT participant_id FROM statements WHERE kind = 'entry'")
    }
    assert {row.find_element(By.TAG_NAME, "th").text for row in rows} == enrolled
    ocmw = next(r for r in rows if r.find_element(By.TAG_NAME, "th").text == "ocmw")
    assert "left the cell" in ocmw.text  # the revocation, with its date
    assert ocmw.find_elements(By.TAG_NAME, "time")


def test_refusals_match_the_store(cell: DemoCell, driver: webdriver.Chrome) -> None:
    driver.get(cell.console_url + "/refusals")
    assert driver.find_element(By.CSS_SELECTOR, "svg#refusals[role=img] title").get_attribute(
        "textContent"
    )
    table = driver.find_element(By.CSS_SELECTOR, "table[data-table=refusals]")
    shown = {
        row.find_element(By.TAG_NAME, "th").text: int(row.find_elements(By.TAG_NAME, "td")[0].text)
        for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")
    }
    stored = dict(cell.sql("SELECT code, COUNT(*) FROM refusals GROUP BY code"))
    assert shown == {**stored, shown_total_label(shown): sum(stored.values())}


def shown_total_label(shown: dict[str, int]) -> str:
    return next(label for label in shown if label in {"Totaal", "Total"})


def test_retention_matches_the_store(cell: DemoCell, driver: webdriver.Chrome) -> None:
    driver.get(cell.console_url + "/retention")
    assert int(metric(driver, "scheduled")) == cell.sql("SELECT COUNT(*) FROM purge_queue")[0][0]
    assert int(metric(driver, "scheduled")) == 1  # the case closed in the scenario
    assert int(metric(driver, "due-now")) == 0
    assert int(metric(driver, "retention-days")) == 365


def test_deliveries_match_the_store(cell: DemoCell, driver: webdriver.Chrome) -> None:
    driver.get(cell.console_url + "/deliveries")
    table = driver.find_element(By.CSS_SELECTOR, "table[data-table=queues]")
    shown = {
        row.find_element(By.TAG_NAME, "th").text: [
            int(td.text) for td in row.find_elements(By.TAG_NAME, "td")[:2]
        ]
        for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")
    }
    stored = cell.sql(
        "SELECT d.recipient_id, COUNT(*), SUM(length(e.blob)) FROM deliveries d "
        "JOIN envelopes e ON e.message_id = d.message_id GROUP BY d.recipient_id"
    )
    assert shown == {pid: [count, size] for pid, count, size in stored}


def test_verify_runs_to_the_end(cell: DemoCell, driver: webdriver.Chrome) -> None:
    driver.get(cell.console_url + "/log")
    driver.find_element(By.CSS_SELECTOR, "form[action='/log/verify'] button").click()

    def finished() -> bool:
        driver.get(cell.console_url + "/log")
        return driver.find_elements(By.CSS_SELECTOR, "[data-metric=verify-status] .ok") != []

    wait_for(finished, "the verification to finish")
    assert int(metric(driver, "verify-checked")) >= int(metric(driver, "log-size")) - 5
    assert int(metric(driver, "verify-checkpoints")) > 0
    assert driver.find_element(By.ID, "verify-progress").get_attribute("value")
    assert driver.find_element(By.CSS_SELECTOR, "svg#checkpoints polyline")


def test_drop_a_delivery_with_a_reason(cell: DemoCell, driver: webdriver.Chrome) -> None:
    pending = cell.sql("SELECT COUNT(*) FROM deliveries WHERE recipient_id = 'ocmw'")[0][0]
    leaves = cell.sql("SELECT COUNT(*) FROM leaves")[0][0]
    driver.get(cell.console_url + "/deliveries")
    form = driver.find_element(
        By.CSS_SELECTOR, "table[data-table=oldest-ocmw] form[action='/deliveries/drop']"
    )
    Select(form.find_element(By.TAG_NAME, "select")).select_by_value("recipient_gone")
    form.find_element(By.TAG_NAME, "button").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "p.notice"), "the drop's notice")
    count = "SELECT COUNT(*) FROM deliveries WHERE recipient_id = 'ocmw'"
    assert cell.sql(count)[0][0] == pending - 1
    (data,) = cell.sql("SELECT data FROM leaves ORDER BY idx DESC LIMIT 1")[0]
    leaf = decode_leaf(bytes(data))
    assert isinstance(leaf, DeliveryDropped)
    assert (leaf.recipient_id, leaf.reason) == ("ocmw", DropReason.RECIPIENT_GONE)
    assert cell.sql("SELECT COUNT(*) FROM leaves")[0][0] >= leaves + 1


def test_no_page_shows_case_refs_message_ids_or_names(
    cell: DemoCell, driver: webdriver.Chrome
) -> None:
    secrets = cell.secrets()
    assert {"Sam", "Voorbeeld", *cell.case_refs} <= set(secrets)
    for path in PAGES:
        driver.get(cell.console_url + path)
        html = driver.page_source
        found = [s for s in secrets if re.search(rf"\b{re.escape(s)}\b", html)]
        assert found == [], f"{path} shows {found}"


async def test_headers_csrf_and_the_api_port(cell: DemoCell) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(cell.console_url + "/login") as answer:
            csp = answer.headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in csp
            assert "script-src 'self'" in csp
            assert "unsafe-inline" not in csp
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
            assert answer.headers["Referrer-Policy"] == "no-referrer"
        form = {"name": OPERATOR, "password": PASSWORD}
        async with http.post(cell.console_url + "/login", data=form) as answer:
            assert answer.status == 200
            cookie = answer.history[0].cookies["livcr_console"]
            assert cookie["httponly"]
            assert cookie["samesite"] == "Strict"
        async with http.post(cell.console_url + "/log/verify", data={}) as answer:
            assert answer.status == 403  # a session, but no CSRF token
        async with http.post(cell.console_url + "/log/verify", data={"csrf": "x" * 43}) as answer:
            assert answer.status == 403  # a wrong one
        for path in (*PAGES, "/login", "/static/console.js"):
            async with http.get(cell.hub.url + path, allow_redirects=False) as answer:
                assert answer.status == 404, path  # the participants' API serves no console


def test_keyboard_reaches_the_skip_link_and_every_form_has_labels(
    cell: DemoCell, driver: webdriver.Chrome
) -> None:
    for path in PAGES:
        driver.get(cell.console_url + path)
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        assert driver.switch_to.active_element.get_attribute("class") == "skip"
        for field in driver.find_elements(By.CSS_SELECTOR, "select, input:not([type=hidden])"):
            labels = driver.find_elements(
                By.CSS_SELECTOR, f"label[for='{field.get_attribute('id')}']"
            )
            assert labels, f"{path}: a field without a label"
        for chart in driver.find_elements(By.CSS_SELECTOR, "svg"):
            assert chart.get_attribute("role") == "img"
            assert chart.get_attribute("aria-labelledby")
