"""`manage.py two_factor_setup <username>`: a staff account's authenticator app, from the terminal.

For the first superuser (nobody can reset them yet) and for a superuser who lost their phone
with nobody else to reset it. Prints a QR code to scan, the key to type instead, and ten
backup codes. Audited like an enrolment in admin.
"""

import segno
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from attendance.services.people.two_factor import two_factor_setup


class Command(BaseCommand):
    help = "Set up two-factor login for a staff account and print its QR code and backup codes."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--replace", action="store_true", help="replace an authenticator app already set up"
        )
        parser.add_argument("--no-qr", action="store_true", help="print the key only")

    def handle(self, *args, username, replace, no_qr, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}. Create it first: manage.py createsuperuser")
        if not user.is_staff:
            raise CommandError(f"{username} is not staff: crew accounts use no second factor.")
        try:
            device, codes = two_factor_setup(user, replace=replace)
        except ValueError as error:
            raise CommandError(f"{error} Add --replace to set up a new one.") from error
        key = device.config_url.split("secret=")[1].split("&")[0]
        self.stdout.write(f"Two-factor login set up for {username}.")
        if not no_qr:
            self.stdout.write("Scan this with the authenticator app:")
            segno.make(device.config_url, error="m").terminal(out=self.stdout._out, compact=True)
        self.stdout.write(
            f"Or type this key: {' '.join(key[n : n + 4] for n in range(0, len(key), 4))}"
        )
        self.stdout.write("Backup codes (each works once; keep them somewhere safe):")
        self.stdout.write("  " + "  ".join(codes))
