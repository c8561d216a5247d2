import logging
from datetime import timedelta

from django import forms
from django.contrib.auth.forms import PasswordResetForm
from django.utils import timezone

from attendance.models import EmailNotification
from attendance.phones import normalise_phone
from attendance.services.notifications import notification_create

logger = logging.getLogger(__name__)

# Anyone can type anyone's address into the form: without a pause, it would flood that inbox
# from our mail server. A member who lost the first email can ask again after this.
RESET_EMAIL_PAUSE = timedelta(minutes=2)


class OutboxPasswordResetForm(PasswordResetForm):
    """Django's reset form, with the email sent through the outbox like every other one.

    Django sends it during the request and only logs a failure, so a reset asked for while
    the mail server hiccups never arrives and nobody can tell. As an outbox row it is
    retried, and staff can see that it went out (but not its link: see the admin).
    """

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        user = context["user"]
        recent = EmailNotification.objects.filter(
            user=user,
            notification_type=EmailNotification.Type.PASSWORD_RESET,
            created_at__gte=timezone.now() - RESET_EMAIL_PAUSE,
        )
        if recent.exists():
            logger.info(
                "Password reset for user %s asked again within the pause; not sent", user.pk
            )
            return
        notification_create(
            recipient=to_email,
            notification_type=EmailNotification.Type.PASSWORD_RESET,
            context=context,
            user=user,
        )


class PhoneNumberForm(forms.Form):
    phone_number = forms.CharField(
        label="M-Pesa number",
        max_length=20,  # before normalising: "+254 (712) 345-678" is longer than what is stored
        required=False,
        help_text="Payment prompts from the office go to this number.",
        widget=forms.TextInput(
            attrs={"type": "tel", "inputmode": "tel", "autocomplete": "tel"},
        ),
    )

    def clean_phone_number(self) -> str:
        value = self.cleaned_data["phone_number"].strip()
        return normalise_phone(value) if value else ""


class MessageChannelForm(forms.Form):
    message_channel = forms.ChoiceField(
        label="Send me invitations, reminders and receipts by",
        choices=[
            ("sms", "SMS"),
            ("email", "Email"),
            ("both", "Both SMS and email"),
        ],
        widget=forms.RadioSelect,
    )


class UnavailableDatesForm(forms.Form):
    starts_on = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    ends_on = forms.DateField(
        label="To (leave empty for one day)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    reason = forms.CharField(label="Reason (only managers see it)", max_length=200, required=False)
