"""Kiswahili (issue 32): the portal, the answer pages and every text in the member's language,
chosen on their Account page; admin stays English.

The catalogue is `locale/sw/LC_MESSAGES/django.po`; texts are written again per language
(`templates/attendance/sms/sw/`), so each fits its 160 characters."""

import gettext
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import polib
import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import translation

from attendance.models import Profile, SmsMessage, TimesheetLine
from attendance.services.messaging.sms import SMS_TYPES, sms_create, sms_render
from attendance.services.messaging.whatsapp import template_values
from attendance.services.pay.holidays import day_of
from attendance.services.pay.rules import Rates, pay_for
from attendance.services.pay.words import in_reader_language
from attendance.sms.callbacks import parse_reply
from attendance.sms.segments import sms_segments
from attendance.whatsapp.templates import TEMPLATES
from attendance.wording import sms_when, when_words
from tests.support.factories import UserFactory
from tests.support.i18n import ROOT, english_left
from tests.support.pay import paid_run, worked_on
from tests.support.sms_samples import NAIROBI, sms_sample_context

CATALOGUE = ROOT / "locale/sw/LC_MESSAGES/django.po"
# What a member reads on the web: every page of the portal, the sign-in and password pages,
# the answer pages from a text or an email, the payslip PDF. The P9 card is KRA's form: English.
CREW_TEMPLATES = sorted(
    [
        ROOT / "templates/base.html",
        ROOT / "templates/403_csrf.html",
        *(ROOT / "templates/registration").glob("*.html"),
        *(
            path
            for path in (ROOT / "templates/attendance").glob("*.html")
            if path.name != "p9.html"
        ),
    ]
)


@pytest.mark.parametrize("path", CREW_TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_crew_template_has_english_left_outside_a_translation(path: Path):
    assert english_left(path) == []


def test_every_entry_of_the_catalogue_is_translated_and_compiled():
    po = polib.pofile(str(CATALOGUE))
    assert len(po) > 300
    assert [e.msgid for e in po if not e.translated() or "fuzzy" in e.flags] == []
    with CATALOGUE.with_suffix(".mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    # The .mo is what Django reads: compiled from this .po (`compilemessages`), not older.
    for entry in po:
        if entry.msgid_plural:
            assert compiled.ngettext(entry.msgid, entry.msgid_plural, 2) == entry.msgstr_plural[1]
        elif entry.msgctxt:
            assert compiled.pgettext(entry.msgctxt, entry.msgid) == entry.msgstr
        else:
            assert compiled.gettext(entry.msgid) == entry.msgstr, entry.msgid


@pytest.mark.parametrize("notification_type", sorted(SMS_TYPES))
def test_each_text_in_kiswahili_fits_one_gsm7_segment_with_long_real_names(notification_type):
    with translation.override("sw"):
        text = sms_render(notification_type, sms_sample_context(notification_type))
    english = sms_render(notification_type, sms_sample_context(notification_type))
    segments = sms_segments(text)
    assert segments.encoding == "GSM-7", text
    assert segments.parts == 1, f"{segments.units} characters: {text}"
    assert "None" not in text and "{" not in text
    assert text != english


def test_dates_read_as_kenyan_calendars_write_them():
    wednesday = datetime(2026, 12, 30, 16, 30, tzinfo=NAIROBI)
    assert sms_when(wednesday) == "Wed 30 Dec 16:30"
    with translation.override("sw"):
        assert sms_when(wednesday) == "Jtano 30 Des 16:30"
        assert when_words(wednesday).endswith("saa 16:30")


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.name)
def test_every_whatsapp_template_renders_in_both_languages(template):
    context = sms_sample_context(template.message_type)
    context.setdefault("recipient_user", UserFactory.build(first_name="Achieng"))
    for language in ("en", "sw"):
        params, payloads = template_values(template, language, context)
        body = template.body(language, dict(params))
        assert len(body) <= 1024 and "{{" not in body
        assert all(value.strip() and "\n" not in value for _, value in params)
        assert len(payloads) == len(template.buttons.get(language, ()))


@pytest.mark.parametrize("word", ["Ndiyo", "Ndio", "Sawa", "Hapana", "NDIYO 4821"])
def test_the_kiswahili_reply_words_are_answers(word):
    assert parse_reply(word) is not None


@pytest.mark.django_db
def test_choosing_kiswahili_turns_the_portal_and_the_messages_into_kiswahili(client, settings):
    settings.SMS_ENABLED = True
    member = UserFactory(profile__phone_number="254712345611")
    client.force_login(member)
    assert "Your account" in client.get(reverse("attendance:account")).text
    answer = client.post(reverse("attendance:account"), {"language": "sw"}, follow=True)
    assert "Imehifadhiwa: tovuti hii na ujumbe wetu sasa ni kwa Kiswahili." in answer.text
    assert '<html lang="sw">' in answer.text and "Akaunti yako" in answer.text
    assert answer.client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "sw"
    assert Profile.objects.get(user=member).language == "sw"
    home = client.get(reverse("attendance:home"))
    assert "Habari" in home.text and "Matukio yako yajayo" in home.text
    # A text to them is in Kiswahili too.
    member.refresh_from_db()
    member.profile.refresh_from_db()
    sms_create(
        user=member,
        phone_number="254712345611",
        notification_type="crew_reply",
        context={"reply": "none_waiting"},
    )
    assert SmsMessage.objects.get().message == (
        "Sound Fusion: hakuna mwaliko unaosubiri jibu lako."
    )


@pytest.mark.django_db
def test_admin_stays_english_whatever_the_browser_or_the_member_reads(client, admin_user):
    # Django's own admin has a Kiswahili catalogue: only our middleware keeps it English.
    page = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="sw")
    assert page.headers["Content-Language"] == "en-gb"
    assert "Username" in page.text and "Jina la mtumiaji" not in page.text
    Profile.objects.filter(user=admin_user).update(language="sw")
    client.force_login(type(admin_user).objects.get(pk=admin_user.pk))  # as a login loads it
    portal = client.get(reverse("attendance:home"))
    assert portal.headers["Content-Language"] == "sw"  # the portal is theirs to choose
    page = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="sw")
    assert page.headers["Content-Language"] == "en-gb"


@pytest.mark.django_db
def test_the_sign_in_page_follows_the_browser_until_a_member_chooses(client):
    english = client.get(reverse("login"))
    assert "Crew log in" in english.text
    kiswahili = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="sw")
    assert "Timu: ingia" in kiswahili.text


# The emails a member gets (their channel's, their payslip, their password link); staff emails
# (alerts, reviews, declines to managers) stay English.
CREW_EMAIL_TYPES = sorted(
    (SMS_TYPES - {"phone_code", "crew_reply"}) | {"payslip", "password_reset"}
)
ENGLISH_IN_EMAILS = ("Hello", "Venue:", "Call time", "Sound Fusion crew list", "Thank you")


@pytest.mark.parametrize("notification_type", CREW_EMAIL_TYPES)
def test_every_crew_email_is_written_in_kiswahili(notification_type):
    from django.template.loader import render_to_string

    from attendance.services.messaging.email import _names

    member = UserFactory.build(first_name="Achieng")
    context = {
        **sms_sample_context(notification_type),
        "recipient_user": member,
        "user": member,
        "uid": "MTIzNA",
        "token": "ceh6f7-4b1e0f2a6c8d",
        "site_url": "https://crew.soundfusion.co.ke",
        "roster": [],
        "roster_total": 12,
        "roster_more": 0,
        "run": "1-15 Dec 2026",
    }
    for key in ("payment", "payout"):
        if key in context:
            context[key].user = member
    if notification_type == "payslip":
        money = Decimal("12500.00")
        context["slip"] = SimpleNamespace(
            member=SimpleNamespace(
                user=member,
                earned=money,
                net=money,
                deducted=Decimal(0),
                to_pay=money,
                balance_after=Decimal(0),
            ),
            lines=[],
            withheld=[],
            employer=[],
        )
    with translation.override("sw"):
        subject = render_to_string(_names(notification_type, "_subject.txt"), context)
        text = render_to_string(_names(notification_type, ".txt"), context)
        html = render_to_string(_names(notification_type, ".html"), context)
    assert (ROOT / f"templates/attendance/emails/sw/{notification_type}.html").exists()
    assert subject.strip() and '<html lang="sw">' in html and "Habari" in text + html
    assert [w for w in ENGLISH_IN_EMAILS if w in subject + text + html] == []


@pytest.mark.django_db
def test_a_member_who_reads_kiswahili_gets_kiswahili_emails_and_staff_english_ones():
    from attendance.services.messaging.email import notification_create

    member = UserFactory(profile__language="sw")
    staff = UserFactory()
    for user in (member, staff):
        notification_create(
            recipient=user.email,
            user=user,
            notification_type="show_check_out",
            context={"event": {"name": "Koroga"}, "event_url": "https://x/"},
        )
    from attendance.models import EmailNotification

    kiswahili, english = (
        EmailNotification.objects.get(user=member),
        EmailNotification.objects.get(user=staff),
    )
    assert kiswahili.subject.startswith("Bado umesajiliwa") and "Habari" in kiswahili.message
    assert english.subject.startswith("Still checked in") and "Hello" in english.message


def test_how_pay_was_worked_out_reads_in_the_readers_language():
    # Jamhuri Day: a holiday at double pay, day rate against hourly, 2 h overtime.
    pay = pay_for(
        rates=Rates(
            day_rate=Decimal("1500"),
            hourly_rate=Decimal("200"),
            overtime_after_hours=Decimal("8"),
            holiday_multiplier=Decimal("2"),
        ),
        hours=Decimal("10"),
        attendance_status="present",
        day=day_of(datetime(2026, 12, 12).date(), gazetted={}),
    )
    assert pay.rule == (
        "Public holiday (Jamhuri Day): 2x. 8 h at KES 200.00/h x 2x + 2 h overtime at 2x"
        " (the better of day rate and hourly)"
    )
    with translation.override("sw"):
        assert in_reader_language(pay.words) == (
            "Sikukuu ya umma (Siku ya Jamhuri): 2x. saa 8 kwa KES 200.00 kwa saa x 2x"
            " + saa 2 za ziada kwa 2x (kilicho bora kati ya kiwango cha siku na cha saa)"
        )
    # A line saved before phrases were kept reads as it was written.
    with translation.override("sw"):
        assert in_reader_language("Day rate KES 1,500.00") == "Day rate KES 1,500.00"


@pytest.mark.django_db
def test_a_kiswahili_members_payslip_says_how_in_kiswahili_and_finance_reads_english():
    with time_machine.travel(datetime(2026, 3, 20, 12, 0, tzinfo=NAIROBI), tick=True):
        people = tuple(UserFactory(is_staff=True) for _ in range(3))
        member = UserFactory(profile__language="sw")
        worked_on(member, 3, "60000", people)
        run = paid_run(people, 3, 3)
    line = TimesheetLine.objects.get(user=member)
    assert line.rule == "Day rate KES 60,000.00"  # admin and exports stay English
    client = Client()
    client.force_login(member)
    page = client.get(reverse("attendance:payslip", args=[run.pk])).text
    for words in (
        "Kiwango cha siku KES 60,000.00",
        "Malipo kamili ya mwezi: KES 60,000.00",
        "Ushuru wa nyumba: 1.5 % ya malipo kamili = KES 900.00",
        "Kodi KES 10,938.35 - punguzo la kodi la binafsi KES 2,400.00",
    ):
        assert words in page, words
    assert "Gross pay for the month" not in page and "Day rate" not in page
