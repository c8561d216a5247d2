"""Event crew: assign, invite, answer (a member's role, call time or pickup changed:
assignment_changes.py; reminders, the briefing and completion: followup.py; what staffing
looks like: staffing.py).

Every change of an assignment goes through here, so the attendance list, the emails and the
answer timestamps stay in step whichever door (portal, email link, admin, beat) it came from.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import dateformat, timezone
from django.utils.translation import gettext as _

from attendance.models import (
    Attendance,
    CrewRole,
    EmailNotification,
    Event,
    EventCrew,
    TimesheetLine,
    member_name,
)
from attendance.services.attendance import (
    attendance_expect,
    attendance_remove,
)
from attendance.services.core.errors import ServiceError
from attendance.services.core.rows import keep_in_step
from attendance.services.crew.availability import unavailable_for
from attendance.services.crew.links import crew_answer_url, crew_short_url, give_codes
from attendance.services.crew.notices import (
    crew_calendar_file,
    crew_email,
    crew_tell_managers_of_decline,
    crew_tell_member_off,
)
from attendance.services.crew.staffing import (
    crew_conflicts,
    role_places_left,
    role_places_open,
)
from attendance.services.messaging.channels import MemberMessage, member_reachable

logger = logging.getLogger(__name__)
Status = EventCrew.Status
# What an answer (confirm or decline) changes on an assignment.
_ANSWER_FIELDS = ["status", "confirmed_at", "responded_at", "decline_reason", "updated_at"]


class CrewError(ServiceError):
    """An assignment change the rules refuse; the message is for the person who asked."""


class RoleFilled(CrewError):
    """The member said yes, but the role's places were taken first: they wait on standby."""


# --- Assigning ------------------------------------------------------------------------------


def crew_check_assignable(*, event: Event) -> None:
    """Raise CrewError if nobody can be put on this event's crew any more."""
    if event.status == Event.Status.CANCELLED:
        raise CrewError(_("%(event)s is cancelled.") % {"event": event.name})
    if event.ends_at <= timezone.now():
        raise CrewError(_("%(event)s is already over.") % {"event": event.name})


def crew_assign(
    *,
    event: Event,
    user: User,
    role: CrewRole,
    by: User | None = None,
    call_time: datetime | None = None,
    notes: str = "",
    standby: bool = False,
) -> EventCrew:
    """Put a member on an event's crew, as invited (no email yet: see crew_invite), or on
    standby for the role (invited in turn when a place opens: crew_promote_standby).

    Raises CrewError if they are already on it or the event is over or cancelled. Being booked
    elsewhere is allowed here (a manager may be arranging a swap); crew_conflicts tells.
    """
    crew_check_assignable(event=event)
    try:
        with transaction.atomic():
            return EventCrew.objects.create(
                event=event,
                user=user,
                role=role,
                call_time=call_time,
                notes=notes,
                assigned_by=by,
                status=Status.STANDBY if standby else Status.INVITED,
                standby_since=timezone.now() if standby else None,
            )
    except IntegrityError:
        raise CrewError(f"{member_name(user)} is already on the crew of {event.name}.") from None


def crew_remove(*, assignment: EventCrew, by: User | None = None) -> None:
    """Take a member off an event; their attendance row goes too unless they checked in."""
    with transaction.atomic():
        current = lock_assignment(assignment)
        if TimesheetLine.objects.filter(assignment=current).exists():
            # Their pay line (and perhaps a payslip) stands on this assignment.
            raise CrewError(
                f"{member_name(current.user)} worked {current.event.name} and has a pay line: "
                "they stay on the crew. Adjust the pay line instead."
            )
        _forget_attendance(current, by=by, reason="Taken off the crew")
        held_a_place = current.invitation_sent and current.status in (
            Status.INVITED,
            Status.CONFIRMED,
        )
        if held_a_place:
            # They were told of it (and may have it in their calendar): tell them it is off.
            crew_tell_member_off(current, removed=True)
        current.delete()
        if held_a_place and current.event.auto_replace:
            crew_promote_standby(event=current.event, role=current.role)


# --- Inviting -------------------------------------------------------------------------------


def crew_invite(*, assignment: EventCrew, now: datetime | None = None) -> MemberMessage:
    """Send the invitation: by email event, role, call time, map, instructions, .ics, answer
    links; by SMS the essentials, a short link to the answer page and the reply code; by
    WhatsApp the template with Confirm / Decline buttons.

    Sending again is allowed while the member has not answered (a lost message). A member on
    standby is invited out of turn (the manager's choice). Raises CrewError if they have
    answered, the event has started, or nothing can reach them.
    """
    now = now or timezone.now()
    with transaction.atomic():
        current = lock_assignment(assignment)
        if current.status == Status.OFFERED:
            raise CrewError(_("offered themselves: accept or decline the offer on the board."))
        if current.status not in (Status.INVITED, Status.STANDBY):
            raise CrewError(f"already answered ({current.get_status_display()}).")
        current.status, current.standby_since = Status.INVITED, None
        _ensure_not_started(current, now)
        if not member_reachable(current.user):
            raise CrewError(_("no email address, and no phone number that takes SMS."))
        give_codes(current)
        notification = crew_email(
            current,
            EmailNotification.Type.CREW_INVITATION,
            {
                "confirm_url": crew_answer_url(assignment=current, action="confirm"),
                "decline_url": crew_answer_url(assignment=current, action="decline"),
                "links_expire": min(
                    now + timedelta(days=settings.CREW_ANSWER_LINK_MAX_AGE_DAYS),
                    current.event.starts_at,
                ),
            },
            attachments=(crew_calendar_file(current, now=now),),
            sms_context={
                "short_url": crew_short_url(assignment=current),
                "reply_code": current.reply_code if settings.SMS_REPLIES_ENABLED else "",
            },
        )
        assert notification is not None
        current.invitation_sent = True
        current.invitation_sent_at = now
        current.save(
            update_fields=[
                "status",
                "standby_since",
                "invitation_sent",
                "invitation_sent_at",
                "link_code",
                "reply_code",
                "updated_at",
            ]
        )
    keep_in_step(assignment, current)
    return notification


# --- Standby ------------------------------------------------------------------------------


def crew_promote_standby(
    *, event: Event, role: CrewRole, places: int | None = None
) -> list[EventCrew]:
    """Invite members on standby for the role, first come first invited, as many as there
    are open places (or `places`, when a manager chooses). Skips whoever marked the day
    unavailable or is confirmed elsewhere then: they stay on standby. Returns those invited.
    """
    if event.status == Event.Status.CANCELLED or event.starts_at <= timezone.now():
        return []
    if places is None:
        places = role_places_open(event_id=event.pk, role_id=role.pk)
    if places <= 0:
        return []
    invited: list[EventCrew] = []
    with transaction.atomic():
        queue = list(
            EventCrew.objects.select_for_update(skip_locked=True)
            .filter(event=event, role=role, status=Status.STANDBY)
            .select_related("user", "event", "role")
            .order_by("standby_since", "pk")
        )
        away = unavailable_for(event, [a.user_id for a in queue])
        for candidate in queue:
            if len(invited) == places:
                break
            if (
                candidate.user_id in away
                or crew_conflicts(
                    user=candidate.user, event=event, call_time=candidate.call_time
                ).exists()
            ):
                continue
            if not member_reachable(candidate.user):
                continue
            try:
                crew_invite(assignment=candidate)
            except CrewError:
                # Never let one standby's problem undo the decline that freed the place.
                logger.warning("Standby %s could not be invited", candidate.pk, exc_info=True)
                continue
            invited.append(candidate)
    return invited


# --- Answering ------------------------------------------------------------------------------


def crew_confirm(*, assignment: EventCrew, now: datetime | None = None) -> EventCrew:
    """The member will work the event. Puts them on the attendance list.

    Idempotent for an assignment already confirmed. Raises CrewError if the event has started,
    is cancelled, or overlaps another event they have confirmed.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # The member's row first: two confirmations of overlapping events at the same moment
        # would otherwise each find no conflict and both succeed.
        get_user_model().objects.select_for_update().filter(pk=assignment.user_id).exists()
        current = lock_assignment(assignment)
        if current.status == Status.CONFIRMED:
            return current
        if current.status == Status.COMPLETED:
            raise CrewError(_("This assignment is already completed."))
        if current.status == Status.STANDBY:
            raise CrewError(
                _("You are on standby for %(event)s: if a place opens, you will be invited.")
                % {"event": current.event.name}
            )
        if current.status == Status.OFFERED:
            raise CrewError(_("Your offer is with the event manager: they will answer you."))
        _ensure_not_started(current, now)
        clash = crew_conflicts(
            user=current.user, event=current.event, call_time=current.call_time
        ).first()
        if clash is not None:
            when = timezone.localtime(clash.event.starts_at)
            raise CrewError(
                _(
                    "You are already confirmed for %(event)s (%(when)s), which overlaps this "
                    "event. Decline one of them first or call the event manager."
                )
                % {"event": clash.event.name, "when": dateformat.format(when, "D j M, H:i")}
            )
        filled = role_places_left(event_id=current.event_id, role_id=current.role_id, lock=True)
        if filled == 0:
            # Someone else took the last place first: they wait, first in the queue.
            current.status = Status.STANDBY
            current.standby_since = current.responded_at = now
            current.save(update_fields=[*_ANSWER_FIELDS, "standby_since"])
        else:
            current.status = Status.CONFIRMED
            current.confirmed_at = current.responded_at = now
            current.decline_reason = ""
            current.save(update_fields=_ANSWER_FIELDS)
            attendance_expect(event=current.event, user=current.user, call_time=current.call_time)
    keep_in_step(assignment, current)
    if filled == 0:
        raise RoleFilled(
            f"Thank you! The {current.role} places at {current.event.name} were filled just "
            "before your answer. You are on standby: if a place opens, you are invited first."
        )
    return current


def crew_decline(
    *, assignment: EventCrew, reason: str = "", now: datetime | None = None, via: str = "portal"
) -> EventCrew:
    """The member cannot work the event (before it starts); the reason is optional.

    `via` decides who hears of it, so nobody gets a message twice: "portal" (the member and
    the managers), "sms" or "whatsapp" (the member was answered where they wrote: email only
    for them), "replaced"
    (a manager approved their replacement: the caller sends the one message, and the
    managers decided it themselves)."""
    now = now or timezone.now()
    reason = " ".join(reason.split())[:500]
    with transaction.atomic():
        current = lock_assignment(assignment)
        if current.status == Status.COMPLETED:
            raise CrewError(_("This assignment is already completed."))
        if current.status == Status.DECLINED and not reason:
            return current
        _ensure_not_started(current, now)
        newly_declined = current.status != Status.DECLINED
        held_a_place = current.status == Status.CONFIRMED or (
            current.status == Status.INVITED and current.invitation_sent
        )
        current.status = Status.DECLINED
        current.responded_at = now
        current.confirmed_at = None
        current.decline_reason = reason
        current.save(update_fields=_ANSWER_FIELDS)
        _forget_attendance(current, by=current.user, reason="Declined the assignment")
        if newly_declined:
            replacements = (
                crew_promote_standby(event=current.event, role=current.role)
                if (held_a_place and current.event.auto_replace)
                else []
            )
            if via != "replaced":
                crew_tell_managers_of_decline(current, replacements)
                if current.invitation_sent:
                    crew_tell_member_off(
                        current, removed=False, text=via not in ("sms", "whatsapp")
                    )
    keep_in_step(assignment, current)
    return current


# --- Internals ------------------------------------------------------------------------------


def lock_assignment(assignment: EventCrew) -> EventCrew:
    """The assignment, locked for a change (its event, role and member loaded)."""
    return (
        EventCrew.objects.select_for_update(of=("self",))
        .select_related("event", "role", "user")
        .get(pk=assignment.pk)
    )


def _ensure_not_started(assignment: EventCrew, now: datetime) -> None:
    if assignment.event.status == Event.Status.CANCELLED:
        raise CrewError(_("%(event)s has been cancelled.") % {"event": assignment.event.name})
    if assignment.event.starts_at <= now:
        raise CrewError(
            _("%(event)s has already started; call the event manager instead.")
            % {"event": assignment.event.name}
        )


def _forget_attendance(assignment: EventCrew, *, by: User | None, reason: str) -> None:
    # Someone who will not come leaves the attendance list, unless they already checked in
    # (then the record is history and staff decide).
    for attendance in Attendance.objects.filter(
        event=assignment.event_id, user=assignment.user_id, check_in_at__isnull=True
    ):
        attendance_remove(attendance=attendance, by=by, reason=reason)
