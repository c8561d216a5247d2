"""`manage.py whatsapp_templates`: our WhatsApp templates in the shape Meta's submission takes.

Each object is the body of `POST /<WABA_ID>/message_templates` (one per template and
language): submit them in WhatsApp Manager or with that call, then wait for APPROVED before
turning WHATSAPP_ENABLED on. `--name` prints one template; `--language sw` one language.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from attendance.whatsapp.templates import LANGUAGES, TEMPLATES


class Command(BaseCommand):
    help = "Print the WhatsApp templates as Meta's template submission JSON."

    def add_arguments(self, parser):
        parser.add_argument("--name", help="Only this template (e.g. sf_crew_invitation_v1).")
        parser.add_argument("--language", choices=LANGUAGES, help="Only this language.")

    def handle(self, *args, name=None, language=None, **options):
        chosen = [t for t in TEMPLATES if name in (None, t.name)]
        if not chosen:
            raise CommandError(f"No template named {name!r}.")
        bodies = [
            template.submission(code)
            for template in chosen
            for code in LANGUAGES
            if language in (None, code) and code in template.bodies
        ]
        self.stdout.write(json.dumps(bodies, indent=2, ensure_ascii=False))
