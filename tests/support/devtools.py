"""Cutting a headless Chromium off the network through the DevTools protocol, service workers
included.

Selenium's `execute_cdp_cmd` speaks to the page only, and a page's network conditions do not
reach its service worker (its `fetch` would still get through). So this connects to the
browser's own DevTools endpoint, attaches to every service worker target and sets the same
conditions there.
"""

from __future__ import annotations

import itertools
import json
import urllib.request

import websocket


class DevTools:
    def __init__(self, driver):
        address = driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
        with urllib.request.urlopen(f"http://{address}/json/version", timeout=5) as answer:
            url = json.load(answer)["webSocketDebuggerUrl"]
        self.socket = websocket.create_connection(url, timeout=10, suppress_origin=True)
        self.ids = itertools.count(1)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        message = {"id": next(self.ids), "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:  # events arrive between answers: skip them
            reply = json.loads(self.socket.recv())
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def events(self, method: str, seconds: float = 5.0) -> list[dict]:
        """The `method` events that arrive within `seconds` (after a command enabled them)."""
        import time

        found, until = [], time.monotonic() + seconds
        self.socket.settimeout(0.2)
        while time.monotonic() < until:
            try:
                message = json.loads(self.socket.recv())
            except websocket.WebSocketTimeoutException:
                if found:
                    break
                continue
            if message.get("method") == method:
                found.append(message["params"])
        self.socket.settimeout(10)
        return found

    def close(self) -> None:
        self.socket.close()


def in_service_worker(driver, expression: str):
    """Evaluate `expression` (a promise is awaited) inside the page's service worker."""
    tools = DevTools(driver)
    try:
        for target in tools.send("Target.getTargets")["targetInfos"]:
            if target["type"] == "service_worker":
                session = tools.send(
                    "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
                )["sessionId"]
                result = tools.send(
                    "Runtime.evaluate",
                    {"expression": expression, "awaitPromise": True, "returnByValue": True},
                    session,
                )
                return result.get("result", {}).get("value")
        raise AssertionError("no service worker")
    finally:
        tools.close()


def deliver_push(driver, origin: str, data: str) -> None:
    """Hand a push message to the page's service worker as the browser does when its push
    service delivers one (a trusted `push` event): the leg from the vendor's service to the
    phone, which no test here can reach."""
    tools = DevTools(driver)
    try:
        page = next(
            t for t in tools.send("Target.getTargets")["targetInfos"] if t["type"] == "page"
        )
        session = tools.send(
            "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}
        )["sessionId"]
        tools.send("ServiceWorker.enable", session=session)
        registrations = [
            r
            for event in tools.events("ServiceWorker.workerRegistrationUpdated")
            for r in event["registrations"]
            if not r.get("isDeleted") and r["scopeURL"] == f"{origin}/"
        ]
        tools.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": origin, "registrationId": registrations[-1]["registrationId"], "data": data},
            session,
        )
    finally:
        tools.close()


class Offline:
    """`with Offline(driver):` the page and every service worker of the browser have no
    network; after it, they have it again. The DevTools connection stays open meanwhile: the
    workers' conditions last only as long as the session that set them."""

    def __init__(self, driver):
        self.driver = driver
        self.tools: DevTools | None = None

    def _conditions(self, offline: bool) -> dict:
        return {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}

    def __enter__(self) -> Offline:
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.emulateNetworkConditions", self._conditions(True))
        self.tools = DevTools(self.driver)
        for target in self.tools.send("Target.getTargets")["targetInfos"]:
            if target["type"] != "service_worker":
                continue
            session = self.tools.send(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )["sessionId"]
            self.tools.send("Network.enable", session=session)
            self.tools.send("Network.emulateNetworkConditions", self._conditions(True), session)
        return self

    def __exit__(self, *exc) -> None:
        self.driver.execute_cdp_cmd("Network.emulateNetworkConditions", self._conditions(False))
        if self.tools is not None:
            self.tools.close()  # the workers' sessions end, and their conditions with them
