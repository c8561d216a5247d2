"""`make run`: the app on http://127.0.0.1:8000 with everything it needs on this machine.

- the local Daraja simulator (unless real M-Pesa credentials are configured), with the app
  pointed at it, so "Pay with M-Pesa" works end to end without credentials;
- the local Africa's Talking simulator (unless AT_API_KEY is set): crew get invitations,
  reminders and receipts by SMS, logged on this console;
- the local WhatsApp Cloud API simulator (unless WHATSAPP_ACCESS_TOKEN is set): members who
  chose WhatsApp get templates with buttons, logged here, and can answer as themselves;
- the local web push service stand-in: a VAPID key for the demo (kept in var/), and James
  Mutua's phone with notifications on, so his invitation shows here as the stand-in got it;
- task processing: with a broker (REDIS_URL), a Celery worker with beat in a subprocess;
  without one, tasks already run in-process and a small thread runs the periodic jobs.
"""

import logging
import os
import subprocess
import sys
import threading

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand

from attendance.management.demo_console import not_a_static_file
from attendance.models import MessageChannel, PushSubscription
from attendance.mpesa.simulator import SANDBOX_PASSKEY, DarajaSimulator
from attendance.push.keys import new_key_pair
from attendance.push.simulator import PushServiceSimulator
from attendance.services.messaging.push import push_subscribe
from attendance.services.ops.schedules import PERIODIC_TASKS
from attendance.services.payments.paybill_registration import (
    paybill_register_pull,
    paybill_register_urls,
)
from attendance.services.people.profiles import profile_set_channel
from attendance.sms.simulator import AfricasTalkingSimulator
from attendance.whatsapp.simulator import WhatsAppSimulator


class Command(BaseCommand):
    help = "Serve the demo: web app, local M-Pesa simulator and task processing."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--simulator-port", type=int, default=8001)
        parser.add_argument("--sms-simulator-port", type=int, default=8002)
        parser.add_argument("--whatsapp-simulator-port", type=int, default=8003)
        parser.add_argument("--push-service-port", type=int, default=8004)

    def handle(
        self,
        *args,
        port,
        simulator_port,
        sms_simulator_port,
        whatsapp_simulator_port,
        push_service_port,
        **options,
    ):
        worker = None
        if "SITE_URL" not in os.environ:
            # Links in emails sent while the demo runs point at the port it serves on.
            settings.SITE_URL = f"http://127.0.0.1:{port}"
        if not settings.MPESA_CONSUMER_KEY:
            simulator = DarajaSimulator(port=simulator_port, callback_delay=4.0).start()
            settings.MPESA_BASE_URL = simulator.url
            settings.MPESA_CONSUMER_KEY = "sim-consumer-key"
            settings.MPESA_CONSUMER_SECRET = "sim-consumer-secret"  # noqa: S105
            settings.MPESA_BUSINESS_SHORT_CODE = "174379"
            settings.MPESA_PASS_KEY = SANDBOX_PASSKEY
            settings.MPESA_CALLBACK_URL = f"http://127.0.0.1:{port}/api/payments/callback"
            # B2C payouts too: the simulator's own initiator and certificate (self-signed,
            # made at its start), results back to this server.
            settings.MPESA_B2C_CONSUMER_KEY = settings.MPESA_CONSUMER_KEY
            settings.MPESA_B2C_CONSUMER_SECRET = settings.MPESA_CONSUMER_SECRET
            settings.MPESA_B2C_INITIATOR_NAME = simulator.state.b2c.initiator_name
            settings.MPESA_B2C_INITIATOR_PASSWORD = simulator.state.b2c.initiator_password
            settings.MPESA_B2C_CERTIFICATE = simulator.state.b2c.certificate.decode()
            settings.MPESA_B2C_RESULT_URL = f"http://127.0.0.1:{port}/api/payouts"
            # Paybill payments from the SIM menu, confirmed to this server; Pull finds the
            # ones whose confirmation the simulator "loses" (amounts ending in 12).
            settings.MPESA_C2B_SHORT_CODE = settings.MPESA_BUSINESS_SHORT_CODE
            settings.MPESA_C2B_URL = f"http://127.0.0.1:{port}/api/paybill"
            settings.MPESA_PULL_ENABLED = True
            settings.MPESA_PULL_NOMINATED_NUMBER = "0722000000"
            simulator.state.paybill.validation_enabled = True
            self._register_paybill()
            self.stdout.write(f"M-Pesa simulator on {simulator.url} (outcome by phone ending:")
            self.stdout.write("  1032 cancelled, 1037 unreachable, 0001 no funds, 2001 wrong PIN,")
            self.stdout.write("  0002 double callback, 0003 lost callback, 0009 pays KES 1 short,")
            self.stdout.write("  5000 refused, 5040 no answer, 5041 late answer but paid;")
            self.stdout.write("  anything else pays; payouts: 0001 no float, 2040 unregistered,")
            self.stdout.write("  0003 result lost, 0008 queue timeout, 5001 answered 500 but")
            self.stdout.write("  paid (result lost); see the M-Pesa notes)")
            self.stdout.write(
                f"Pay by Paybill from a SIM menu: {simulator.url}/simulator/paybill "
                "(account number: a member's code, shown on their Balance page)"
            )
        if not settings.AT_API_KEY:
            self._start_sms_simulator(port, sms_simulator_port)
        if not settings.WHATSAPP_ACCESS_TOKEN:
            self._start_whatsapp_simulator(port, whatsapp_simulator_port)
        if not settings.VAPID_PRIVATE_KEY:
            self._start_push_service(push_service_port)
        if settings.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend":
            settings.EMAIL_BACKEND = "attendance.management.demo_console.OneLineEmailBackend"
        logging.getLogger("django.server").addFilter(not_a_static_file)
        if current_app.conf.task_always_eager:
            threading.Thread(target=self._periodic_jobs, daemon=True).start()
            self.stdout.write("Tasks run in-process; periodic jobs every minute.")
        else:
            command = [sys.executable, "-m", "celery", "-A", "soundfusion_attendance", "worker"]
            worker = subprocess.Popen([*command, "-B", "-l", "info", "--concurrency", "2"])  # noqa: S603
            self.stdout.write("Celery worker with beat started.")
        self.stdout.write(
            self.style.SUCCESS(f"Sound Fusion is at {settings.SITE_URL}/ (admin: /admin/)")
        )
        try:
            call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)
        finally:
            if worker:
                worker.terminate()

    def _register_paybill(self):
        """The simulator only stores the URLs: registering before this server answers is
        fine."""
        self.stdout.write(paybill_register_urls())
        self.stdout.write(paybill_register_pull())

    def _start_sms_simulator(self, port: int, sms_port: int) -> None:
        # Crew get texts by default in the demo; the simulator "delivers" them and its log
        # below shows each one. Replies come in through `POST /simulator/reply`.
        sms = AfricasTalkingSimulator(port=sms_port, report_delay=3.0).start()
        base = f"http://127.0.0.1:{port}/api/sms"
        sms.state.report_url = f"{base}/delivery/{settings.SMS_CALLBACK_TOKEN}/"
        sms.state.incoming_url = f"{base}/incoming/{settings.SMS_CALLBACK_TOKEN}/"
        demo = {
            "SMS_ENABLED": True,
            "SMS_REPLIES_ENABLED": True,
            "AT_USERNAME": sms.state.username,
            "AT_API_KEY": sms.state.api_key,
            "AT_BASE_URL": sms.url,
        }
        for name, value in demo.items():
            setattr(settings, name, value)
            os.environ[name] = str(value)  # the Celery worker, if one starts, reads these
        logging.getLogger("attendance.sms.simulator").setLevel(logging.INFO)
        self.stdout.write(f"SMS simulator (Africa's Talking) on {sms.url}: texts are logged here;")
        self.stdout.write("  numbers ending 91 undelivered, 92 opted out, 93 invalid, 94 rate-")
        self.stdout.write("  limited once, 95 no report. Reply as a member:")
        self.stdout.write(
            f"  curl -X POST {sms.url}/simulator/reply -d "
            """'{"from": "+254712345001", "text": "YES 1234"}'"""
        )

    def _start_whatsapp_simulator(self, port: int, wa_port: int) -> None:
        simulator = WhatsAppSimulator(port=wa_port, status_delay=2.0).start()
        simulator.state.webhook_url = f"http://127.0.0.1:{port}/api/whatsapp/webhook/"
        demo = {
            "WHATSAPP_ENABLED": True,
            "WHATSAPP_BASE_URL": simulator.url,
            "WHATSAPP_PHONE_NUMBER_ID": simulator.state.phone_number_id,
            "WHATSAPP_ACCESS_TOKEN": simulator.state.access_token,
            "WHATSAPP_APP_SECRET": simulator.state.app_secret,
            "WHATSAPP_VERIFY_TOKEN": "sim-verify-token",
        }
        for name, value in demo.items():
            setattr(settings, name, value)
            os.environ[name] = str(value)  # the Celery worker, if one starts, reads these
        logging.getLogger("attendance.whatsapp.simulator").setLevel(logging.INFO)
        self.stdout.write(f"WhatsApp simulator (Cloud API) on {simulator.url}: messages logged;")
        self.stdout.write("  numbers ending 81 never read, 82 outside the window (131047), 83 not")
        self.stdout.write("  on WhatsApp (131026), 84 out of order, 85 each status twice, 86 no")
        self.stdout.write("  status. Press a button or write as a member (Achieng uses WhatsApp):")
        self.stdout.write(
            f"  curl -X POST {simulator.url}/simulator/reply -d "
            """'{"from": "254733345003", "button": "Nitakuja"}'"""
        )

    def _start_push_service(self, push_port: int) -> None:
        # One key for the demo, kept beside its database: phones subscribe with it.
        key_file = settings.BASE_DIR / "var" / "demo-vapid-key"
        if not key_file.exists():
            key_file.parent.mkdir(exist_ok=True)
            key_file.write_text(new_key_pair()[0])
        settings.VAPID_PRIVATE_KEY = key_file.read_text().strip()
        settings.WEBPUSH_ENABLED = True
        os.environ["VAPID_PRIVATE_KEY"] = settings.VAPID_PRIVATE_KEY  # for a Celery worker
        service = PushServiceSimulator(port=push_port).start()
        # A browser here has no vendor push service to subscribe with (no internet): James
        # Mutua's "phone" is one of the stand-in's, subscribed as his browser would be.
        member = User.objects.filter(username="mutua").first()
        if member is not None:
            PushSubscription.objects.filter(user=member).delete()
            push_subscribe(user=member, subscription=service.new_device(), user_agent="Demo phone")
            profile_set_channel(user=member, channel=MessageChannel.PUSH)
        self.stdout.write(f"Web push stand-in on {service.url}: notifications are logged here;")
        self.stdout.write("  James Mutua (mutua) has notifications on: his invitations show here.")

    def _periodic_jobs(self):
        # What beat does in production, for a demo without a broker.
        import time

        from django.utils.module_loading import import_string

        while True:
            time.sleep(60)
            for task_path, _ in PERIODIC_TASKS.values():
                try:
                    import_string(task_path).apply()
                except Exception as error:  # keep the demo running
                    self.stderr.write(f"{task_path}: {error}")
