"""Demo data for a first look, and volume for benchmarks (management/volume.py and
volume_logs.py). Safe to run again."""

import random
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from attendance.management import volume, volume_logs
from attendance.management.demo_data import (
    CREW,
    DEMO_PASSWORD,
    DEMO_RATES,
    DEMO_STATUTORY,
    EVENTS,
    ROLE_OF,
    today_event_start,
)
from attendance.management.demo_show_day import demo_show_day
from attendance.models import (
    Attendance,
    CrewRole,
    EmailNotification,
    Event,
    EventCrew,
    EventRoleRequirement,
    LedgerEntry,
    PaybillPayment,
    Profile,
    StatutoryProfile,
    TimesheetLine,
    Unavailability,
)
from attendance.phones import normalise_phone
from attendance.services.attendance import attendance_correct, attendance_expect
from attendance.services.crew.assignments import CrewError, crew_assign, crew_confirm, crew_invite
from attendance.services.crew.availability import availability_mark
from attendance.services.crew.offers import crew_ask_replacement, crew_offer
from attendance.services.crew.track_record import crew_rate
from attendance.services.ledger import ledger_add_by_hand
from attendance.services.pay.assignment_pay import pay_role_save
from attendance.services.pay.runs import pay_run_approve, pay_run_create
from attendance.services.pay.timesheets import (
    timesheet_approve,
    timesheet_create,
    timesheet_dispute,
)
from attendance.services.payments.paybill import paybill_seen
from attendance.services.people.two_factor import two_factor_setup

User = get_user_model()


class Command(BaseCommand):
    help = "Create demo users, events, attendance and charges (idempotent); optionally add volume."

    def add_arguments(self, parser):
        parser.add_argument("--crew", type=int, default=0, help="extra generated crew members")
        parser.add_argument("--events", type=int, default=0, help="extra generated past events")
        parser.add_argument("--payments", type=int, default=0, help="extra M-Pesa payments")
        parser.add_argument("--notifications", type=int, default=0, help="extra sent emails")
        parser.add_argument("--texts", type=int, default=0, help="extra sent SMS (over a year)")
        parser.add_argument(
            "--task-results", type=int, default=0, help="extra stored task results (a week)"
        )
        parser.add_argument("--sign-ins", type=int, default=0, help="extra sign-ins (a year)")
        parser.add_argument("--seed", type=int, default=7, help="random seed for generated data")
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args, **options):
        # The demo's own emails (invitations, confirmations) are written to the outbox like any
        # other, but delivered into memory: printed by the console backend they would bury the
        # logins under a thousand lines of email source. Admin shows every one of them.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            before = EmailNotification.objects.count()
            self._seed(**options)
            written = EmailNotification.objects.count() - before
        # Every demo staff login's second factor, made anew on each run: their backup codes are
        # printed, so a newcomer can try each role without an authenticator app.
        codes = {
            name: two_factor_setup(User.objects.get(username=name), replace=True)[1]
            for name in ("admin", "manager", "finance")
        }
        if not options["quiet"]:
            self._print_logins(written, codes)

    def _seed(
        self, *, crew, events, payments, notifications, texts, task_results, sign_ins, seed, **_
    ):
        rng = random.Random(seed)
        with transaction.atomic():
            admin = self._user("admin", "Grace", "Admin", "0700000001", is_superuser=True)
            manager = self._user("manager", "Daniel", "Manager", "0700000002", is_staff=True)
            finance = self._user("finance", "Mercy", "Njoroge", "0700000003", is_staff=True)
            # The roles migrate created (attendance.services.people.roles).
            manager.groups.add(Group.objects.get(name="Event managers"))
            finance.groups.add(Group.objects.get(name="Finance"))
            members = [
                self._user(u, first, last, phone, department=dept, skills=skills)
                for u, first, last, phone, dept, skills in CREW
            ]
            # Achieng reads Kiswahili and chose WhatsApp: her invitations come as the
            # template with Nitakuja / Siwezi buttons (the simulator's log shows them).
            Profile.objects.filter(
                user__username="achieng", whatsapp_opted_in_at__isnull=True
            ).update(message_channel="whatsapp", whatsapp_opted_in_at=timezone.now(), language="sw")
            self._demo_events(admin, manager, members)
            demo_show_day(admin, members, self.stderr)
            self._demo_pay(admin, manager, finance)
            self._demo_scheduling(admin, manager, members)
        if crew:
            members += volume.bulk_crew(crew)
        if events or payments or notifications or texts or sign_ins:
            members = list(
                User.objects.filter(pk__in=[m.pk for m in members]).select_related("profile")
            )
        if events:
            volume.bulk_events(events, members, rng)
        if payments:
            volume.bulk_payments(payments, members, rng)
        if notifications:
            volume.bulk_notifications(notifications, members, rng)
        if texts:
            volume_logs.bulk_texts(texts, members, rng)
        if task_results:
            volume_logs.bulk_task_results(task_results, rng)
        if sign_ins:
            volume_logs.bulk_sign_ins(sign_ins, members, rng)

    def _print_logins(self, emails_written: int, codes: dict[str, list[str]]) -> None:
        if emails_written:
            self.stdout.write(
                f"{emails_written} demo emails written to the outbox "
                "(read them at /admin/attendance/emailnotification/)."
            )
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Log in at {settings.SITE_URL}/"))
        self.stdout.write(f"  admin    / {DEMO_PASSWORD}  (superuser, /admin/)")
        self.stdout.write(f"  manager  / {DEMO_PASSWORD}  (staff: events, crew, attendance)")
        self.stdout.write(f"  finance  / {DEMO_PASSWORD}  (staff: payments and the ledger)")
        self.stdout.write(f"  wanjiku  / {DEMO_PASSWORD}  (crew; also otieno, achieng, kiprop ...)")
        self.stdout.write("Staff give a second factor at /admin/: a backup code (each works once):")
        for name, theirs in codes.items():
            self.stdout.write(f"  {name:<8} {' '.join(theirs[:4])}")

    def _user(
        self,
        username,
        first,
        last,
        phone,
        *,
        is_staff=False,
        is_superuser=False,
        department="",
        skills="",
    ):
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@soundfusion.local",
                "is_staff": is_staff or is_superuser,
                "is_superuser": is_superuser,
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
            Profile.objects.filter(user=user).update(
                phone_number=normalise_phone(phone),
                department=department,
                skills=skills,
            )
        return user

    def _demo_events(self, admin, manager, members):
        today = timezone.localdate()
        tz = timezone.get_current_timezone()
        for index, (name, client, venue, days, hour, hours, status) in enumerate(EVENTS):
            starts = datetime.combine(today + timedelta(days=days), time(hour), tzinfo=tz)
            if days == 0:
                starts = today_event_start()
            event, created = Event.objects.get_or_create(
                name=name,
                client=client,
                defaults={
                    "venue": venue,
                    "starts_at": starts,
                    "ends_at": starts + timedelta(hours=hours),
                    "call_time": starts - timedelta(hours=2),
                    "status": status,
                    "created_by": admin,
                    "description": f"{name} for {client}. Full PA, lighting and stage.",
                    "special_instructions": "Black crew shirts. Load in through the service gate; "
                    "ask security for the Sound Fusion list.",
                },
            )
            if not created:
                continue
            event.managers.add(manager)
            crew = members[index % 3 : index % 3 + 6]
            if days >= 0 and members[0] not in crew:
                crew.append(members[0])  # the demo login sees every stage of the workflow
            self._demo_crew(event, crew, days, admin)
            for member in crew:
                if days < 0:
                    self._past_attendance(
                        attendance_expect(event=event, user=member), manager, event
                    )
            if days < 0:
                for member in crew[:2]:
                    ledger_add_by_hand(
                        user=member,
                        kind=LedgerEntry.Kind.CHARGE,
                        amount=Decimal(
                            random.Random(member.pk + event.pk).choice([500, 1200, 2500])
                        ),
                        description=f"Lost cable / equipment damage at {event.name}",
                        by=manager,
                        source=event,
                    )

    def _demo_pay(self, admin, manager, finance):
        """Rates; a line per completed assignment; the oldest event paid in an approved pay
        run, the next one's lines in a run awaiting approval, the latest still open with one
        disputed (the manager's to answer)."""
        for role in CrewRole.objects.filter(name__in=DEMO_RATES, day_rate__isnull=True):
            day, hourly, minimum, overtime = DEMO_RATES[role.name]
            role.day_rate = Decimal(day)
            role.hourly_rate = Decimal(hourly) if hourly else None
            role.minimum_hours = Decimal(minimum)
            role.overtime_after_hours = Decimal(overtime) if overtime else None
            pay_role_save(role=role)
        self._demo_statutory()
        completed = EventCrew.objects.filter(
            status=EventCrew.Status.COMPLETED, timesheet__isnull=True
        ).values_list("pk", flat=True)
        if not timesheet_create(assignment_ids=completed, by=manager):
            return  # already seeded
        past = list(
            Event.objects.filter(timesheet_lines__isnull=False).distinct().order_by("starts_at")
        )
        for event in past[:-1]:
            timesheet_approve(lines=TimesheetLine.objects.filter(event=event), by=manager)
        for event in past[:2]:
            day = timezone.localtime(event.starts_at).date()
            run = pay_run_create(period_start=day, period_end=day, by=finance)
            if event == past[0]:
                # The maker-checker rule: finance drew it up, so someone else approves it.
                pay_run_approve(pay_run=run, by=admin)
        if past:
            line = TimesheetLine.objects.filter(event=past[-1]).order_by("pk").first()
            if line is not None:
                timesheet_dispute(
                    line=line,
                    user=line.user,
                    reason="I stayed two more hours for the load-out; the sheet says 22:00.",
                )
        # Someone owes money, so the portal's "Pay with M-Pesa" has something to show: the demo
        # crew login lost an in-ear monitor after her payslip was approved (her payout is then
        # capped at what she is owed, which here is nothing).
        wanjiku = User.objects.get(username="wanjiku")
        ledger_add_by_hand(
            user=wanjiku,
            kind=LedgerEntry.Kind.CHARGE,
            amount=max(Decimal("2500.00"), -wanjiku.profile.balance + Decimal("1850.00")),
            description="Replacement in-ear monitor (lost at the Sunday service)",
            by=manager,
        )
        self._demo_paybill(wanjiku)

    def _demo_statutory(self):
        """How the accountant engaged three members (demo_data.DEMO_STATUTORY); the others
        are casual employees with their numbers still to add, which the draft pay run lists."""
        for username, numbers in DEMO_STATUTORY.items():
            StatutoryProfile.objects.update_or_create(
                user=User.objects.get(username=username), defaults=numbers
            )

    def _demo_paybill(self, wanjiku):
        """Paybill payments from the SIM menu, through the same rules as a confirmation: one
        from Wanjiku toward what she owes, and one whose payer typed a phone number instead of
        an account code (Finance's unattributed queue)."""
        yesterday = timezone.localtime() - timedelta(days=1)
        for receipt, amount, account, name in (
            ("SDM1PAYBL1", "1000.00", wanjiku.profile.account_code, "WANJIKU"),
            ("SDM2PAYBL2", "750.00", "0712 000 999", "PETER"),
        ):
            paybill_seen(
                receipt=receipt,
                amount=Decimal(amount),
                paid_at=yesterday.replace(hour=18, minute=30, second=0, microsecond=0),
                bill_ref=account,
                source=PaybillPayment.Source.CONFIRMATION,
                payer_name=name,
                short_code=settings.MPESA_BUSINESS_SHORT_CODE,
            )

    def _demo_scheduling(self, admin, manager, members):
        """What a manager staffs with: the roles each member does, dates some cannot work,
        ratings of past work, a standby, an offer and a replacement request waiting, a jazz
        festival with open roles for the crew portal, and Koroga Festival needing 40 people
        with 40 more stagehands to pick from on its staffing board."""
        if Unavailability.objects.filter(user__username="mutua").exists():
            return  # already seeded
        roles = {role.name: role for role in CrewRole.objects.all()}
        by_name = {member.username: member for member in members}
        for member in members:
            own = ROLE_OF.get(member.username, "Stagehand")
            member.profile.roles.add(roles[own], *([roles["Stagehand"]] if own != "DJ" else []))
        events = {event.name: event for event in Event.objects.filter(created_by=admin)}
        blankets, koroga = events["Blankets & Wine"], events["Koroga Festival"]
        availability_mark(
            user=by_name["chebet"],
            starts_on=timezone.localdate(koroga.starts_at) - timedelta(days=1),
            ends_on=timezone.localdate(koroga.starts_at) + timedelta(days=1),
            reason="Graduation in Eldoret",
        )
        availability_mark(
            user=by_name["mutua"],
            starts_on=timezone.localdate(blankets.starts_at) + timedelta(days=2),
            reason="Clinic appointment",
        )
        for assignment, rating, note in zip(
            EventCrew.objects.filter(status=EventCrew.Status.COMPLETED).order_by("pk")[:6],
            [5, 4, 3, 5, 2, 4],
            ["Ran the desk alone", "", "Late at load-in", "", "Left before load-out", ""],
            strict=False,
        ):
            crew_rate(assignment=assignment, rating=rating, note=note, by=manager)
        # On standby at Blankets & Wine: invited if the driver drops out.
        if not blankets.crew.filter(user=by_name["akinyi"]).exists():
            crew_assign(
                event=blankets,
                user=by_name["akinyi"],
                role=roles["Driver"],
                by=manager,
                standby=True,
            )
        # A jazz festival with roles still open: the portal's Open roles shows them.
        tz = timezone.get_current_timezone()
        starts = datetime.combine(timezone.localdate() + timedelta(days=17), time(15), tzinfo=tz)
        jazz = Event.objects.create(
            name="Safaricom Jazz Festival",
            client="Safaricom PLC",
            venue="Kasarani Stadium, Nairobi",
            starts_at=starts,
            ends_at=starts + timedelta(hours=8),
            call_time=starts - timedelta(hours=3),
            status=Event.Status.PLANNED,
            created_by=admin,
        )
        jazz.managers.add(manager)
        for name, needed in (("FOH engineer", 2), ("Stagehand", 4), ("Driver", 1)):
            EventRoleRequirement.objects.create(event=jazz, role=roles[name], needed=needed)
        crew_offer(member=by_name["omondi"], event=jazz, role=roles["FOH engineer"])
        # A confirmed member asking to be replaced at the wedding.
        wedding = events["Wedding reception"]
        asking = (
            wedding.crew.filter(status=EventCrew.Status.CONFIRMED)
            .exclude(user__username="wanjiku")
            .first()
        )
        if asking is not None:
            crew_ask_replacement(assignment=asking, reason="Family emergency upcountry")
        # Koroga: 40 places, and 40 stagehands to choose from on the board.
        for name, needed in (
            ("Stagehand", 29),  # with the DJ: 40 in all
            ("FOH engineer", 2),
            ("Monitor engineer", 2),
            ("Lighting technician", 4),
            ("Driver", 2),
        ):
            EventRoleRequirement.objects.update_or_create(
                event=koroga, role=roles[name], defaults={"needed": needed}
            )
        for extra in volume.bulk_crew(40, prefix="stagehand"):
            extra.profile.roles.add(roles["Stagehand"])

    def _demo_crew(self, event, crew, days, admin):
        """Past events: completed crew. Today and in 3 days: confirmed (the wedding still waits
        for wanjiku). In 10 days: invitations sent. In 24 days: assigned, not yet invited."""
        roles = {role.name: role for role in CrewRole.objects.all()}
        needed: dict[str, int] = {"Stagehand": 1}  # one more than booked: "1 to find"
        for member in crew:
            name = ROLE_OF.get(member.username, "Stagehand")
            needed[name] = needed.get(name, 0) + 1
        EventRoleRequirement.objects.bulk_create(
            [EventRoleRequirement(event=event, role=roles[n], needed=k) for n, k in needed.items()]
        )
        for member in crew:
            role = roles[ROLE_OF.get(member.username, "Stagehand")]
            if days < 0:
                # History: written as it would stand after the event, not replayed.
                EventCrew.objects.create(
                    event=event,
                    user=member,
                    role=role,
                    status=EventCrew.Status.COMPLETED,
                    assigned_by=admin,
                    invitation_sent=True,
                    invitation_sent_at=event.starts_at - timedelta(days=7),
                    confirmed_at=event.starts_at - timedelta(days=6),
                    responded_at=event.starts_at - timedelta(days=6),
                    completed_at=event.ends_at + timedelta(hours=2),
                )
                continue
            try:
                assignment = crew_assign(event=event, user=member, role=role, by=admin)
                if days >= 24:
                    continue
                if days <= 3 and not (days == 3 and member.username == "wanjiku"):
                    crew_confirm(assignment=assignment)
                else:
                    crew_invite(assignment=assignment)
            except CrewError as error:  # e.g. today's event has already started
                self.stderr.write(f"{event.name}: {error}")

    def _past_attendance(self, attendance, manager, event):
        rng = random.Random(attendance.pk)
        roll = rng.random()
        if roll < 0.1:
            attendance_correct(
                attendance=attendance, by=manager, status=Attendance.Status.ABSENT, reason="No show"
            )
            return
        late = roll > 0.8
        check_in = event.call_time + timedelta(
            minutes=rng.randint(25, 50) if late else rng.randint(-30, 10)
        )
        check_out = event.ends_at + timedelta(minutes=rng.randint(15, 90))
        attendance_correct(
            attendance=attendance,
            by=manager,
            check_in_at=check_in,
            check_out_at=check_out,
            reason="Recorded from the paper sign-in sheet",
        )
