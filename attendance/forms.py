import logging
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from attendance.models import EmailNotification, MessageChannel, SmsMessage
from attendance.phones import normalise_phone
from attendance.services.core.urls import absolute_url
from attendance.services.messaging.channels import member_can_text, member_channel
from attendance.services.messaging.email import notification_create
from attendance.services.messaging.sms import sms_create

logger = logging.getLogger(__name__)

# Anyone can type anyone's address into the form: without a pause, it would flood that inbox
# from our mail server. A member who lost the first email can ask again after this.
RESET_EMAIL_PAUSE = timedelta(minutes=2)


class OutboxPasswordResetForm(PasswordResetForm):
    """Django's reset form, sent through the outboxes like every other message: by email, or
    by SMS to members who take texts (crew's default), found by email address or number.

    Django sends it during the request and only logs a failure, so a reset asked for while
    the mail server hiccups never arrives and nobody can tell. As an outbox row it is
    retried, and staff can see that it went out (but not its link: see the admin).
    """

    email = forms.CharField(
        label=_("Email address or M-Pesa number"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
        help_text=_("We send the link the way you get our messages: by text or by email."),
    )

    def clean_email(self) -> str:
        value = self.cleaned_data["email"].strip()
        if "@" in value:
            return forms.EmailField().clean(value)
        try:
            return normalise_phone(value)
        except ValidationError as error:
            raise ValidationError(
                _("Type the email address on your account, or your M-Pesa number.")
            ) from error

    def get_users(self, email):
        if "@" in email:
            return super().get_users(email)
        users = get_user_model().objects.filter(profile__phone_number=email, is_active=True)
        return (user for user in users if user.has_usable_password())

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
        if _reset_sent_recently(user):
            logger.info(
                "Password reset for user %s asked again within the pause; not sent", user.pk
            )
            return
        link = absolute_url("password_reset_confirm", uidb64=context["uid"], token=context["token"])
        # A reset link goes by SMS, never WhatsApp: texts reach the SIM the member proved.
        by_text = member_channel(user) != MessageChannel.EMAIL and member_can_text(user)
        if by_text:
            sms_create(
                user=user,
                phone_number=user.profile.phone_number,
                notification_type=EmailNotification.Type.PASSWORD_RESET,
                context={"link": link},
            )
        if user.email and (not by_text or member_channel(user) == MessageChannel.BOTH):
            notification_create(
                recipient=user.email,
                notification_type=EmailNotification.Type.PASSWORD_RESET,
                context=context,
                user=user,
            )


def _reset_sent_recently(user: User) -> bool:
    since = timezone.now() - RESET_EMAIL_PAUSE
    kind = EmailNotification.Type.PASSWORD_RESET
    return (
        EmailNotification.objects.filter(
            user=user, notification_type=kind, created_at__gte=since
        ).exists()
        or SmsMessage.objects.filter(
            user=user, notification_type=kind, created_at__gte=since
        ).exists()
    )


class PhoneNumberForm(forms.Form):
    """A new M-Pesa number, with the password again: the number is where pay goes."""

    phone_number = forms.CharField(
        label=_("New M-Pesa number"),
        max_length=20,  # before normalising: "+254 (712) 345-678" is longer than what is stored
        help_text=_("We text a code to it; the number is used once you type the code here."),
        widget=forms.TextInput(
            attrs={"type": "tel", "inputmode": "tel", "autocomplete": "tel"},
        ),
    )
    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("Your pay goes to this number, so we ask for it again."),
    )

    def clean_phone_number(self) -> str:
        return normalise_phone(self.cleaned_data["phone_number"].strip())


class PhoneCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code from the text"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9 ]*"}
        ),
    )


CHANNEL_CHOICES = [("sms", _("SMS")), ("email", _("Email")), ("both", _("Both SMS and email"))]


class MessageChannelForm(forms.Form):
    message_channel = forms.ChoiceField(
        label=_("Send me invitations, reminders and receipts by"),
        choices=CHANNEL_CHOICES,
        widget=forms.RadioSelect,
    )
    whatsapp_number = forms.CharField(
        label=_("WhatsApp number"),
        required=False,
        max_length=20,
        help_text=_("Leave it empty to use your M-Pesa number."),
        widget=forms.TextInput(attrs={"type": "tel", "inputmode": "tel", "autocomplete": "tel"}),
    )

    def __init__(self, *args: Any, whatsapp: bool = False, push: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        field = self.fields["message_channel"]
        assert isinstance(field, forms.ChoiceField)
        choices = list(CHANNEL_CHOICES)
        if whatsapp:
            choices.insert(0, ("whatsapp", _("WhatsApp (a text when WhatsApp cannot reach me)")))
        else:
            del self.fields["whatsapp_number"]
        if push:  # only once a phone of theirs has notifications on
            choices.insert(
                0, ("push", _("Notifications on my phone (a text when they cannot reach me)"))
            )
        field.choices = choices

    def clean_whatsapp_number(self) -> str:
        number = self.cleaned_data.get("whatsapp_number", "").strip()
        return normalise_phone(number) if number else ""


class LanguageForm(forms.Form):
    # Each language named in itself: a member who cannot read the page can still find theirs.
    language = forms.ChoiceField(
        label=_("Language of this site and of our messages to you"),
        choices=[("en", "English"), ("sw", "Kiswahili")],
        widget=forms.RadioSelect,
    )


class UnavailableDatesForm(forms.Form):
    starts_on = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    ends_on = forms.DateField(
        label=_("To (leave empty for one day)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    reason = forms.CharField(
        label=_("Reason (only managers see it)"), max_length=200, required=False
    )
