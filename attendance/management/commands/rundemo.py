"""`make run`: the app on http://127.0.0.1:8000 with everything it needs on this machine."""

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the app for the demo (development server on 127.0.0.1:8000)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, port, **options):
        self.stdout.write(
            self.style.SUCCESS(f"Sound Fusion is at http://127.0.0.1:{port}/ (admin: /admin/)")
        )
        call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)
