"""Helpers for the browser tests (the `browser` fixture is in conftest.py)."""

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE_WIDTH = 375
WAIT_SECONDS = 10


def wait_for_text(driver, css: str, text: str, seconds: float = WAIT_SECONDS) -> None:
    """Wait until the element at `css` shows `text` (after a click, a reload or a fetch)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, seconds).until(
        expected_conditions.text_to_be_present_in_element(("css selector", css), text)
    )


def click_and_wait_for(driver, element, css: str, text: str) -> None:
    element.click()
    wait_for_text(driver, css, text)


def log_in(driver, live_server, username: str, password: str, next_url: str, *, admin=False):
    login = "/admin/login/" if admin else "/accounts/login/"
    driver.get(f"{live_server.url}{login}?next={next_url}")
    driver.find_element("name", "username").send_keys(username)
    driver.find_element("name", "password").send_keys(password)
    driver.find_element("css selector", "form [type=submit]").click()


def assert_fits_the_phone(driver) -> None:
    viewport = driver.execute_script("return window.innerWidth")
    page_width = driver.execute_script(
        "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
    )
    assert viewport == PHONE_WIDTH
    assert page_width <= viewport, f"horizontal scroll: page {page_width}px > {viewport}px"


def screenshot(driver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / f"{name}-{PHONE_WIDTH}px.png"))
