"""`manage.py paybill_register`: register our Paybill URLs with Daraja (C2B), and with
`--pull` the shortcode for Pull Transactions. Production registers once (see
MPESA_CRM_IMPLEMENTATION.md, "C2B go-live"); "already registered" is explained, not an error."""

from django.core.management.base import BaseCommand, CommandError

from attendance.services.payments.paybill_registration import (
    PaybillSetupError,
    paybill_register_pull,
    paybill_register_urls,
    paybill_urls,
)


class Command(BaseCommand):
    help = "Register the Paybill confirmation and validation URLs (and Pull) with Daraja."

    def add_arguments(self, parser):
        parser.add_argument("--pull", action="store_true", help="register Pull Transactions too")
        parser.add_argument(
            "--show", action="store_true", help="print the URLs without registering"
        )

    def handle(self, *args, pull, show, **options):
        confirmation, validation = paybill_urls()
        if show:
            self.stdout.write(f"Confirmation: {confirmation}\nValidation:   {validation}")
            return
        try:
            self.stdout.write(paybill_register_urls())
            if pull:
                self.stdout.write(paybill_register_pull())
        except PaybillSetupError as error:
            raise CommandError(str(error)) from error
