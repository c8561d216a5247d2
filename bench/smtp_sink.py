"""A local SMTP sink in its own process: `python bench/smtp_sink.py PORT OUT_FILE`.

Writes the X-Notification-ID header (or "-") of every accepted message to OUT_FILE, a line each,
so the benchmark can check that nothing was delivered twice.
"""

import sys
import time
from email.parser import BytesHeaderParser

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out):
        self.out = out

    async def handle_DATA(self, server, session, envelope):
        message = BytesHeaderParser().parsebytes(envelope.content)
        self.out.write((message["X-Notification-ID"] or "-") + "\n")
        self.out.flush()
        return "250 Message accepted"


if __name__ == "__main__":
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "w") as out:
        controller = Controller(Sink(out), hostname="127.0.0.1", port=port)
        controller.start()
        print("ready", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            controller.stop()
