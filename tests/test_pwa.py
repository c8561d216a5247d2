"""The portal as an installable app (issue 33): manifest, service worker, offline page, and
nothing of one member's left on the phone for the next."""

import json

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse
from PIL import Image
from selenium.webdriver.support.ui import WebDriverWait

from attendance.views import app
from tests.support.browser import (
    WAIT_SECONDS,
    assert_no_serious_accessibility_problems,
    log_in,
    open_page,
    small_tap_targets,
    wait_until_the_worker_controls,
)
from tests.support.devtools import Offline
from tests.support.factories import UserFactory
from tests.support.portal_world import PASSWORD


def test_the_manifest_makes_the_portal_installable(client):
    response = client.get("/manifest.webmanifest")
    assert response["Content-Type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/?source=pwa" and manifest["scope"] == "/"
    assert manifest["short_name"] and manifest["name"] and manifest["theme_color"]
    sizes: dict[str, list[str]] = {}
    for icon in manifest["icons"]:
        path = finders.find(icon["src"].removeprefix("/static/"))
        with Image.open(path) as image:
            assert f"{image.width}x{image.height}" == icon["sizes"]
        sizes.setdefault(icon.get("purpose", "any"), []).append(icon["sizes"])
    assert sizes == {"any": ["192x192", "512x512"], "maskable": ["512x512"]}


def test_the_service_worker_is_served_from_the_root_and_names_its_version(client):
    response = client.get("/sw.js")
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cache-Control"] == "no-cache"
    script = response.content.decode()
    _, version = app.worker_precache()
    assert f'const VERSION = "{version}";' in script
    assert '"/offline/?lang=sw"' in script and '"/static/css/app.css"' in script
    assert '"/jsi18n/?l=sw"' in script
    assert "&quot;" not in script  # JSON as written, not HTML-escaped


def test_a_changed_file_makes_a_new_worker_so_phones_update(tmp_path, monkeypatch):
    css = tmp_path / "app.css"
    css.write_text("body { color: black; }")
    monkeypatch.setattr(finders, "find", lambda path: str(css) if path == "css/app.css" else None)
    app._precache.cache_clear()
    try:
        _, before = app._precache(())
        css.write_text("body { color: navy; }")
        app._precache.cache_clear()
        _, after = app._precache(())
    finally:
        app._precache.cache_clear()
    assert before != after


@pytest.mark.django_db
def test_the_offline_page_names_nobody_and_reads_in_the_asked_language():
    member = UserFactory(first_name="Wanjiku", is_staff=True)
    client = Client()
    client.force_login(member)
    # A message waiting for the member's next page must still be there after the worker
    # fetched the offline page in the background.
    client.post(reverse("attendance:account"), {"language": "en"})
    english = client.get("/offline/?lang=en-gb").text
    assert "No connection" in english
    assert "Log out" not in english and "Admin" not in english and "Wanjiku" not in english
    swahili = client.get("/offline/?lang=sw").text
    assert '<html lang="sw">' in swahili and "Hakuna mtandao" in swahili
    assert "Saved" in client.get(reverse("attendance:home")).text


@pytest.mark.django_db
def test_a_signed_in_members_pages_are_never_kept_by_the_browser(client):
    member = UserFactory()
    client.force_login(member)
    # What sets its own caching keeps it: the app's files are the same for everyone.
    assert client.get("/manifest.webmanifest")["Cache-Control"] == "public, max-age=3600"
    for name in ("home", "ledger", "my_pay", "account"):
        cache_control = client.get(reverse(f"attendance:{name}"))["Cache-Control"]
        assert "no-store" in cache_control and "private" in cache_control, name
    logout = client.post(reverse("logout"))
    assert logout["Clear-Site-Data"] == '"cache"'


def _cached_urls(driver) -> list[str]:
    return driver.execute_async_script(
        """const done = arguments[0];
        caches.keys().then(names => Promise.all(names.map(name =>
            caches.open(name).then(cache => cache.keys()))))
          .then(lists => done(lists.flat().map(request => request.url)));"""
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_chromium_finds_the_portal_installable_and_shows_the_offline_page(
    browser, live_server, world
):
    log_in(browser, live_server, "wanjiku", PASSWORD, "/")
    wait_until_the_worker_controls(browser)
    manifest = browser.execute_cdp_cmd("Page.getAppManifest", {})
    assert manifest["errors"] == [] and manifest["url"].endswith("/manifest.webmanifest")
    assert browser.execute_cdp_cmd("Page.getInstallabilityErrors", {}) == {
        "installabilityErrors": []
    }
    cached = _cached_urls(browser)
    assert any(url.endswith("/offline/?lang=en-gb") for url in cached)
    with Offline(browser):
        open_page(browser, f"{live_server.url}/balance/")
        assert browser.find_element("tag name", "h1").text == "No connection"
        assert browser.execute_script("return document.styleSheets.length") >= 1  # from cache
        assert small_tap_targets(browser) == []
        assert_no_serious_accessibility_problems(browser, "offline")
    open_page(browser, f"{live_server.url}/balance/")
    assert "Lost XLR" in browser.find_element("tag name", "main").text


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_after_logout_the_next_member_on_the_phone_sees_nothing_of_the_first(
    browser, live_server, world
):
    other = UserFactory(username="otieno", first_name="Otieno")
    other.set_password(PASSWORD)
    other.save()
    log_in(browser, live_server, "wanjiku", PASSWORD, "/balance/")
    wait_until_the_worker_controls(browser)
    assert "Lost XLR" in browser.find_element("tag name", "main").text
    # Whatever a page might have put in the app's caches goes at logout.
    browser.execute_async_script(
        """const done = arguments[0];
        caches.open("sf-page-test").then(c => c.put("/balance/", new Response("Lost XLR")))
          .then(() => done());"""
    )
    browser.find_element("css selector", "form[data-logout] button").click()
    WebDriverWait(browser, WAIT_SECONDS).until(lambda d: "/accounts/login/" in d.current_url)
    assert not [url for url in _cached_urls(browser) if "/balance/" in url]
    browser.back()  # the first member's balance page, from history
    WebDriverWait(browser, WAIT_SECONDS).until(lambda d: "/accounts/login/" in d.current_url)
    assert "Lost XLR" not in browser.find_element("tag name", "body").text
    log_in(browser, live_server, "otieno", PASSWORD, "/")
    wait_until_the_worker_controls(browser)
    with Offline(browser):
        open_page(browser, f"{live_server.url}/balance/")
        assert "Lost XLR" not in browser.find_element("tag name", "body").text
    open_page(browser, f"{live_server.url}/balance/")
    assert "Lost XLR" not in browser.find_element("tag name", "body").text
