"""What the local provider simulators (Daraja, Africa's Talking) share."""

import sys
from http.server import ThreadingHTTPServer


class SimulatorServer(ThreadingHTTPServer):
    """A simulator's HTTP server. A client that gave up before its answer (a read timeout, a
    test that moved on) is what a real provider sees every day: not worth a traceback on the
    console, where it reads like our failure and lands in the next test's stderr."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):  # broken pipe, reset by the client
            return
        super().handle_error(request, client_address)
