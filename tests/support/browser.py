"""Helpers for the browser tests (the `browser` fixtures are in conftest.py).

Every helper that causes a page load waits for that page: it waits for the old document to go
stale and then for something only the new page has. Looking an element up straight after a
click otherwise races the navigation and finds the old page ("Node with given id does not
belong to the document").
"""

from pathlib import Path

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE_WIDTH = 375
DESKTOP_WIDTH = 1280
WAIT_SECONDS = 10
# Interactive elements that are tap targets (links inside running text are exempt, as WCAG
# 2.5.8's inline exception says).
TAP_TARGETS = (
    "nav a, nav button, button, input:not([type=hidden]), select, textarea, summary, a.btn, a.more"
)


def wait_for_text(driver, css: str, text: str, seconds: float = WAIT_SECONDS) -> None:
    """Wait until the element at `css` shows `text` (after a fetch updates the page)."""
    WebDriverWait(driver, seconds).until(
        expected_conditions.text_to_be_present_in_element(("css selector", css), text)
    )


def _gone(element):
    """Like expected_conditions.staleness_of, but also when ChromeDriver reports the node gone
    as "does not belong to the document" (a WebDriverException, not a stale reference) while
    the old document is being replaced."""

    def check(_driver):
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise
        return False

    return check


def wait_for_new_page(driver, old_html, seconds: float = WAIT_SECONDS) -> None:
    WebDriverWait(driver, seconds).until(_gone(old_html))
    WebDriverWait(driver, seconds).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def click_and_wait_for(driver, element, css: str, text: str) -> None:
    """Click something that loads a page, and wait for that page to show `text` at `css`."""
    old_html = driver.find_element("tag name", "html")
    element.click()
    wait_for_new_page(driver, old_html)
    wait_for_text(driver, css, text)


def log_in(driver, live_server, username: str, password: str, next_url: str, *, admin=False):
    """Log in and wait until the page after the login (`next_url`) has loaded.

    `admin`: through the admin's login, then its second step with a backup code (an app's
    code works once per 30 seconds, and tests log the same person in more often).
    """
    login = "/admin/login/" if admin else "/accounts/login/"
    if admin:
        _has_an_app(username)
    driver.get(f"{live_server.url}{login}?next={next_url}")
    driver.find_element("name", "username").send_keys(username)
    driver.find_element("name", "password").send_keys(password)
    old_html = driver.find_element("tag name", "html")
    driver.find_element("css selector", "form [type=submit]").click()
    wait_for_new_page(driver, old_html)
    if admin:
        give_second_factor(driver, username)
    path = next_url.split("?")[0]
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: d.current_url.split("?")[0].endswith(path))


def open_page(driver, url: str, css: str = "main, #content") -> None:
    """Load `url` and wait until its main content is there."""
    driver.get(url)
    WebDriverWait(driver, WAIT_SECONDS).until(
        expected_conditions.presence_of_element_located(("css selector", css))
    )


def assert_fits_the_width(driver, width: int = PHONE_WIDTH) -> None:
    viewport = driver.execute_script("return window.innerWidth")
    page_width = driver.execute_script(
        "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
    )
    assert viewport == width
    assert page_width <= viewport, f"horizontal scroll: page {page_width}px > {viewport}px"


def assert_fits_the_phone(driver) -> None:
    assert_fits_the_width(driver, PHONE_WIDTH)


def assert_no_serious_accessibility_problems(driver, name: str) -> None:
    """axe-core on the current page: no violation of impact "serious" or "critical"."""
    from selenium_axe_python import Axe

    axe = Axe(driver)
    axe.inject()
    violations = axe.run()["violations"]
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    details = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(node["target"][0] for node in v["nodes"][:5])
        for v in serious
    ]
    assert not serious, f"{name}: " + "\n".join(details)


def small_tap_targets(driver) -> list[str]:
    """Visible tap targets smaller than 44 px in either direction (WCAG 2.5.5)."""
    return driver.execute_script(
        """
        const small = [];
        for (const el of document.querySelectorAll(arguments[0])) {
          const r = el.getBoundingClientRect();
          const style = getComputedStyle(el);
          if (!r.width || !r.height || style.visibility === "hidden") continue;
          if (el.closest("[hidden], details:not([open]) > :not(summary)")) continue;
          if (r.height < 44 || r.width < 44) {
            const label = (el.innerText || el.value || el.name || "").trim().slice(0, 30);
            const size = `${Math.round(r.width)}x${Math.round(r.height)}`;
            small.push(`${el.tagName.toLowerCase()} "${label}" ${size}`);
          }
        }
        return small;
        """,
        TAP_TARGETS,
    )


def columns_off_screen(driver, fields: list[str]) -> list[str]:
    """Changelist columns (by field name) whose header is not wholly in view: beyond the
    window's right edge, or beyond the edge of the box that scrolls sideways around the table
    (the admin's `.results`: a column there is hidden until someone scrolls it)."""
    return driver.execute_script(
        """
        const out = [];
        for (const field of arguments[0]) {
          const th = document.querySelector(`#result_list th.column-${field}`);
          if (!th) { out.push(field + " (missing)"); continue; }
          let right = window.innerWidth;
          for (let box = th.parentElement; box; box = box.parentElement) {
            const style = getComputedStyle(box);
            if (["auto", "scroll", "hidden"].includes(style.overflowX)) {
              right = Math.min(right, box.getBoundingClientRect().right);
            }
          }
          const r = th.getBoundingClientRect();
          if (r.right > right + 1) {
            out.push(`${field} ends at ${Math.round(r.right)}, the view at ${Math.round(right)}`);
          }
        }
        return out;
        """,
        fields,
    )


def screenshot(driver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    width = driver.execute_script("return window.innerWidth")
    assert driver.save_screenshot(str(ARTIFACTS / f"{name}-{width}px.png"))


def give_second_factor(driver, username: str) -> None:
    """On the second-step page: type a fresh backup code of `username` and continue."""
    import secrets

    from django.contrib.auth import get_user_model

    from tests.support.auth import backup_code

    user = get_user_model().objects.get(username=username)
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: "/admin/two-factor/" in d.current_url)
    driver.find_element("name", "code").send_keys(backup_code(user, secrets.token_hex(4)))
    old_html = driver.find_element("tag name", "html")
    driver.find_element("id", "verify-button").click()
    wait_for_new_page(driver, old_html)


def _has_an_app(username: str) -> None:
    from django.contrib.auth import get_user_model

    from tests.support.auth import app_device

    app_device(get_user_model().objects.get(username=username))


def wait_until_the_worker_controls(driver) -> None:
    """Wait until the app's service worker controls the page: it installs on the first page
    and takes the open pages as it activates; a page that loaded before that is reloaded."""
    driver.execute_async_script(
        "const done = arguments[0]; navigator.serviceWorker.ready.then(() => done(true));"
    )
    if not driver.execute_script("return !!navigator.serviceWorker.controller"):
        driver.refresh()
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: d.execute_script("return !!navigator.serviceWorker.controller")
    )
