"""The WhatsApp templates we submit to Meta, as data: name, category, approved text per
language, the named parameters and how each is filled from a message's context.

Business-initiated WhatsApp messages must use a template Meta approved beforehand, in the exact
language code it was approved in. What is here is what `manage.py whatsapp_templates` prints
for submission, what the outbox sends, and what the local simulator accepts; a change to a
body is a new template for Meta (bump the name's version) and a new approval.

Each parameter is a small Django template over the same context as the message's SMS and
email, rendered in the member's language (so dates come out in Kiswahili for Kiswahili).
Quick-reply buttons carry our own payload (`crew:<assignment id>:yes`), which comes back on
the webhook when the member taps; it is only a pointer: the answer is checked against the
member who tapped. No body starts or ends with a variable (Meta rejects those).
"""

from __future__ import annotations

from dataclasses import dataclass, field

LANGUAGES = ("en", "sw")
UTILITY = "UTILITY"


@dataclass(frozen=True)
class WhatsAppTemplate:
    message_type: str
    name: str
    # (parameter name, Django template over the message context); in body order.
    params: tuple[tuple[str, str], ...]
    bodies: dict[str, str]
    category: str = UTILITY
    # Quick-reply button labels per language (at most 25 characters), and each button's
    # payload template, in the same order.
    buttons: dict[str, tuple[str, ...]] = field(default_factory=dict)
    payloads: tuple[str, ...] = ()
    footer: dict[str, str] = field(default_factory=dict)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.params)

    def body(self, language: str, values: dict[str, str]) -> str:
        """The approved text with its values filled in: what the member reads."""
        text = self.bodies[language]
        for name in self.param_names:
            text = text.replace("{{" + name + "}}", values.get(name, ""))
        return text

    def submission(self, language: str) -> dict:
        """The body of `POST /<WABA_ID>/message_templates` for one language."""
        components: list[dict] = [
            {
                "type": "BODY",
                "text": self.bodies[language],
                "example": {
                    "body_text_named_params": [
                        {"param_name": name, "example": EXAMPLES.get(name, name)}
                        for name in self.param_names
                    ]
                },
            }
        ]
        if language in self.footer:
            components.append({"type": "FOOTER", "text": self.footer[language]})
        if self.buttons:
            components.append(
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": label} for label in self.buttons[language]
                    ],
                }
            )
        return {
            "name": self.name,
            "language": language,
            "category": self.category,
            "parameter_format": "named",
            "components": components,
        }


# Sample values Meta's reviewers see beside each variable.
EXAMPLES = {
    "first_name": "Wanjiku",
    "role": "Sound engineer",
    "event": "Safari Rally gala",
    "venue": "KICC, Nairobi",
    "call_time": "Sat 12 Dec, 14:00",
    "answer_url": "https://crew.soundfusion.co.ke/K7M2QX9PRT/",
    "event_url": "https://crew.soundfusion.co.ke/events/42/",
    "call_sheet_url": "https://crew.soundfusion.co.ke/events/42/call-sheet/",
    "coming_url": "https://crew.soundfusion.co.ke/events/42/coming/",
    "portal_url": "https://crew.soundfusion.co.ke/crew/",
    "changes": "call time 15:00",
    "amount": "KES 4,500.00",
    "receipt": "TLA4X9K2PQ",
    "pay_url": "https://crew.soundfusion.co.ke/pay/",
    "purpose": "Equipment damage",
}

_FIRST_NAME = "{{ recipient_user.first_name|default:recipient_user.username }}"
_CALL = '{{ call_time|date:"D j M, H:i" }}'
_EVENT = "{{ event.name }}"
_VENUE = "{{ event.venue|default:'-' }}"

TEMPLATES: tuple[WhatsAppTemplate, ...] = (
    WhatsAppTemplate(
        message_type="crew_invitation",
        name="sf_crew_invitation_v1",
        params=(
            ("first_name", _FIRST_NAME),
            ("role", "{{ role.name }}"),
            ("event", _EVENT),
            ("venue", _VENUE),
            ("call_time", _CALL),
            ("answer_url", "{{ short_url }}"),
        ),
        bodies={
            "en": (
                "Hello {{first_name}}, Sound Fusion would like you as {{role}} at {{event}}, "
                "{{venue}}. Call time: {{call_time}}. The details: {{answer_url}}\n"
                "Tap Confirm or Decline below to answer."
            ),
            "sw": (
                "Habari {{first_name}}, Sound Fusion ingependa ufanye kazi ya {{role}} "
                "kwenye {{event}}, {{venue}}. Muda wa kufika: {{call_time}}. Maelezo yote: "
                "{{answer_url}}\nBonyeza Nitakuja au Siwezi hapa chini ili ujibu."
            ),
        },
        buttons={"en": ("Confirm", "Decline"), "sw": ("Nitakuja", "Siwezi")},
        payloads=("crew:{{ assignment.pk }}:yes", "crew:{{ assignment.pk }}:no"),
    ),
    WhatsAppTemplate(
        message_type="crew_reminder",
        name="sf_crew_reminder_v1",
        params=(
            ("event", _EVENT),
            ("venue", _VENUE),
            ("call_time", _CALL),
            ("event_url", "{{ event_url }}"),
        ),
        bodies={
            "en": (
                "Reminder from Sound Fusion: {{event}} at {{venue}}, call time {{call_time}}. "
                "Check in when you arrive: {{event_url}}\nSee you there."
            ),
            "sw": (
                "Ukumbusho kutoka Sound Fusion: {{event}} pale {{venue}}, muda wa kufika "
                "{{call_time}}. Jisajili ukifika: {{event_url}}\nTutaonana huko."
            ),
        },
    ),
    WhatsAppTemplate(
        message_type="event_updated",
        name="sf_event_updated_v1",
        params=(("event", _EVENT), ("changes", "{{ what }}"), ("portal_url", "{{ portal_url }}")),
        bodies={
            "en": (
                "Sound Fusion: {{event}} has changed ({{changes}}). The details: "
                "{{portal_url}}\nThank you."
            ),
            "sw": (
                "Sound Fusion: {{event}} imebadilika ({{changes}}). Maelezo kamili: "
                "{{portal_url}}\nAsante."
            ),
        },
    ),
    WhatsAppTemplate(
        message_type="show_leave_now",
        name="sf_show_leave_now_v1",
        params=(
            ("event", _EVENT),
            ("venue", _VENUE),
            ("call_time", '{{ call_time|date:"H:i" }}'),
            ("call_sheet_url", "{{ call_sheet_url }}"),
        ),
        bodies={
            "en": (
                "Sound Fusion: time to leave for {{event}}. Call time {{call_time}} at "
                "{{venue}}. Call sheet: {{call_sheet_url}}\nSafe travels."
            ),
            "sw": (
                "Sound Fusion: ni wakati wa kuondoka kwenda {{event}}. Muda wa kufika "
                "{{call_time}} pale {{venue}}. Ratiba ya siku: {{call_sheet_url}}\nSafari njema."
            ),
        },
    ),
    WhatsAppTemplate(
        message_type="show_are_you_coming",
        name="sf_show_are_you_coming_v1",
        params=(
            ("event", _EVENT),
            ("call_time", '{{ call_time|date:"H:i" }}'),
            ("coming_url", "{{ coming_url }}"),
        ),
        bodies={
            "en": (
                "Sound Fusion: call time for {{event}} was {{call_time}} and you have not "
                "checked in. Tell us if you are on your way: {{coming_url}}\nThank you."
            ),
            "sw": (
                "Sound Fusion: muda wa kufika {{event}} ulikuwa {{call_time}} na bado "
                "hujajisajili. Tuambie kama uko njiani: {{coming_url}}\nAsante."
            ),
        },
    ),
    WhatsAppTemplate(
        message_type="payout_receipt",
        name="sf_payout_receipt_v1",
        params=(
            ("amount", "KES {{ payout.amount }}"),
            ("receipt", "{{ payout.receipt_number }}"),
            ("pay_url", "{{ pay_url }}"),
        ),
        bodies={
            "en": (
                "Sound Fusion has paid you {{amount}} by M-Pesa, code {{receipt}}. "
                "Your payslips: {{pay_url}}\nThank you for your work."
            ),
            "sw": (
                "Sound Fusion imekulipa {{amount}} kupitia M-Pesa, nambari {{receipt}}. "
                "Hati zako za malipo: {{pay_url}}\nAsante kwa kazi yako."
            ),
        },
    ),
    WhatsAppTemplate(
        message_type="payment_confirmation",
        name="sf_payment_received_v1",
        params=(
            ("amount", "KES {{ payment.amount }}"),
            ("receipt", '{{ payment.receipt_number|default:"-" }}'),
            ("purpose", "{{ payment.payment_purpose }}"),
        ),
        bodies={
            "en": (
                "Sound Fusion has received your payment of {{amount}}, M-Pesa code "
                "{{receipt}}, for {{purpose}}. Thank you."
            ),
            "sw": (
                "Sound Fusion imepokea malipo yako ya {{amount}}, nambari ya M-Pesa "
                "{{receipt}}, kwa ajili ya {{purpose}}. Asante."
            ),
        },
    ),
)

BY_TYPE = {template.message_type: template for template in TEMPLATES}
BY_NAME = {template.name: template for template in TEMPLATES}
