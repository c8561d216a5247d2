"""What the local provider simulators (Daraja, Africa's Talking, WhatsApp) share."""

import heapq
import itertools
import sys
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any, Self


class SimulatorServer(ThreadingHTTPServer):
    """A simulator's HTTP server. A client that gave up before its answer (a read timeout, a
    test that moved on) is what a real provider sees every day: not worth a traceback on the
    console, where it reads like our failure and lands in the next test's stderr."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):  # broken pipe, reset by the client
            return
        super().handle_error(request, client_address)


class TimedPosts:
    """What a simulator posts back later (delivery reports, status webhooks), each at its time.
    One thread posts them all in time order, so 2,000 messages are not 2,000 timers."""

    def __init__(self, post: Callable[[Any], None]):
        self._post = post
        self._due: list[tuple[float, int, Any]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        threading.Thread(target=self._run, daemon=True).start()

    def schedule(self, delay: float, item: Any) -> None:
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), item))
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    timeout = self._due[0][0] - time.monotonic() if self._due else None
                    self._wake.wait(timeout)
                _, _, item = heapq.heappop(self._due)
            self._post(item)


class BackgroundSimulator:
    """A simulator served from a background thread (tests, `make run`): its handler class is
    bound to its `state`, which the test or the demo reads and steers."""

    def __init__(self, *, host: str, port: int, handler: type, state: Any):
        self.state = state
        bound = type("BoundHandler", (handler,), {"state": state})
        self.server = SimulatorServer((host, port), bound)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self) -> Self:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
