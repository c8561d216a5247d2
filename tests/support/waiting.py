"""The one way a test waits for something another thread or process does."""

import time


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.05) -> bool:
    """Call `predicate` until it is true or `timeout` seconds have passed; its last answer.

    A fixed sleep races the thing it waits for (a simulator's timer, a worker); this returns
    as soon as the condition holds, and the generous timeout only matters when it never does.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
