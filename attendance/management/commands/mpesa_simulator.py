from django.core.management.base import BaseCommand

from attendance.mpesa.simulator import SANDBOX_PASSKEY, DarajaSimulator


class Command(BaseCommand):
    help = "Serve the local Daraja (M-Pesa) simulator. Outcomes by phone: see its module docs."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--consumer-key", default="sim-consumer-key")
        parser.add_argument("--consumer-secret", default="sim-consumer-secret")
        parser.add_argument("--short-code", default="174379")
        parser.add_argument("--pass-key", default=SANDBOX_PASSKEY)
        parser.add_argument("--callback-delay", type=float, default=3.0, help="seconds")

    def handle(self, *args, **o):
        simulator = DarajaSimulator(
            host=o["host"],
            port=o["port"],
            consumer_key=o["consumer_key"],
            consumer_secret=o["consumer_secret"],
            short_code=o["short_code"],
            pass_key=o["pass_key"],
            callback_delay=o["callback_delay"],
        )
        self.stdout.write(f"Daraja simulator on {simulator.url} (Ctrl-C to stop)")
        try:
            simulator.serve_forever()
        except KeyboardInterrupt:
            simulator.stop()
