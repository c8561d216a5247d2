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

    def close(self) -> None:
        self.socket.close()


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
