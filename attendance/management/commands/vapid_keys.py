"""`python manage.py vapid_keys`: a new VAPID key pair for web push.

Put the private key in the environment as VAPID_PRIVATE_KEY (or VAPID_PRIVATE_KEY_FILE). Make
it once: every phone's subscription is bound to the key it subscribed with, and a new key
means every member turns notifications on again.
"""

from django.core.management.base import BaseCommand

from attendance.push.keys import new_key_pair


class Command(BaseCommand):
    help = "Print a new VAPID key pair for web push (VAPID_PRIVATE_KEY)."

    def handle(self, *args, **options):
        private, public = new_key_pair()
        self.stdout.write(f"VAPID_PRIVATE_KEY={private}")
        self.stdout.write(f"# public key (the app derives it; for reference): {public}")
