"""Screenshots of every console page, in English, against the demo's cell (`make
console-screenshots` writes them to docs/console/)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TZ", "Europe/Brussels")  # the hub shows local time: show one with an offset
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from browser import chromium, log_in, wait_for  # noqa: E402
from democell import OPERATOR, PASSWORD, create, populate  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

PAGES = {
    "login": "/login",
    "overview": "/",
    "participants": "/participants",
    "log": "/log",
    "refusals": "/refusals",
    "retention": "/retention",
    "deliveries": "/deliveries",
}


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        cell = create(Path(folder) / "cell", locale="en")
        cell.hub.start()
        try:
            populate(cell)
            with chromium() as driver:
                driver.get(cell.console_url + "/login")
                driver.save_screenshot(str(out / "login.png"))
                log_in(driver, cell.console_url, OPERATOR, PASSWORD)
                wait_for(lambda: not driver.current_url.endswith("/login"), "the overview")
                driver.get(cell.console_url + "/log")
                driver.find_element(By.CSS_SELECTOR, "form[action='/log/verify'] button").click()
                wait_for(lambda: _verified(driver, cell.console_url), "the verification")
                for name, path in PAGES.items():
                    if name != "login":
                        driver.get(cell.console_url + path)
                        _whole_page(driver)
                        driver.save_screenshot(str(out / f"{name}.png"))
                    print(f"wrote {out / name}.png")  # noqa: T201  (a make target reports its output)
        finally:
            cell.hub.stop()
    return 0


def _whole_page(driver: object) -> None:
    """Make the viewport as tall as the page, so the screenshot holds all of it."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})  # type: ignore[attr-defined]
    height = int(metrics["cssContentSize"]["height"]) + 16
    driver.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": max(height, 600), "deviceScaleFactor": 1, "mobile": False},
    )


def _verified(driver: object, base_url: str) -> bool:
    driver.get(base_url + "/log")  # type: ignore[attr-defined]
    return bool(driver.find_elements(By.CSS_SELECTOR, "[data-metric=verify-status] .ok"))  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/console")))
