"""The callbacks a simulator has promised to send later.

A test's simulator is stopped when the test ends, but a callback it scheduled with a long delay
would still fire afterwards, into the next test's live server (pytest-django keeps one live
server for the session, at one URL). Stopping the simulator cancels what has not been sent.
"""

from __future__ import annotations

import threading
from typing import Any


class Timers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[threading.Timer] = set()
        self._stopped = False

    def later(self, delay: float, function: Any, *args: Any) -> None:
        """Call `function(*args)` after `delay` seconds, off the caller's thread."""

        def run() -> None:
            with self._lock:
                self._pending.discard(timer)
                if self._stopped:
                    return
            function(*args)

        timer = threading.Timer(delay, run)
        timer.daemon = True
        with self._lock:
            if self._stopped:
                return
            self._pending.add(timer)
        timer.start()

    def cancel_all(self) -> None:
        with self._lock:
            self._stopped = True
            pending, self._pending = self._pending, set()
        for timer in pending:
            timer.cancel()
