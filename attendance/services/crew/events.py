from collections.abc import Callable
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from attendance.ics import CANCEL, PUBLISH
from attendance.models import EmailNotification, Event, EventCrew, SmsMessage
from attendance.services.core.urls import absolute_url
from attendance.services.crew.notices import crew_calendar_file
from attendance.services.messaging.channels import member_message
from attendance.services.messaging.email import notification_create
from attendance.wording import sms_fit, sms_when, when_lazily

# What crew need to hear about when it changes, with the label they read.
# The labels are read in each member's language (lazy: translated when the message renders).
NOTIFY_ON_CHANGE = {
    "starts_at": gettext_lazy("Start"),
    "ends_at": gettext_lazy("End"),
    "call_time": gettext_lazy("Call time"),
    "venue": gettext_lazy("Venue"),
    "venue_map_url": gettext_lazy("Map link"),
    "special_instructions": gettext_lazy("Special instructions"),
}


def _display(value: object) -> object:
    if isinstance(value, datetime):
        return when_lazily(value)
    return value


def event_affected_crew(event: Event) -> QuerySet[User]:
    """The people who must hear about changes to an event.

    Crew who have been sent an invitation or have confirmed, and anyone else on the attendance
    list (events staffed without the crew workflow); never someone who declined.
    """
    Crew = EventCrew.Status
    told_of_it = Q(crew_assignments__event=event) & (
        Q(crew_assignments__status=Crew.CONFIRMED)
        | Q(crew_assignments__status=Crew.INVITED, crew_assignments__invitation_sent=True)
    )
    declined = EventCrew.objects.filter(event=event, status=Crew.DECLINED).values("user_id")
    return (
        User.objects.filter(told_of_it | Q(attendances__event=event))
        .exclude(pk__in=declined)
        .distinct()
    )


class Changes(list):
    """The changes announced, as [{field, label, before, after}], and how many members were
    told by each way (`told`: {"email": n, "text": m}), so staff are told the truth."""

    told: dict[str, int]

    def __init__(self) -> None:
        super().__init__()
        self.told = {}

    def told_in_words(self) -> str:
        ways = [f"{n} by {way}" for way, n in sorted(self.told.items()) if n]
        return " and ".join(ways) or "nobody (no crew to tell yet)"


def event_save(*, event: Event, by: User | None = None, announce: bool = True) -> Changes:
    """Create or update an event; tell its crew what changed (after commit).

    Returns the changes, with who was told how. `announce=False` saves and returns them
    untold: the caller adds what else changed in the same save (the run of show) and calls
    event_announce once, so each member gets one message.
    """
    with transaction.atomic():
        changes = Changes()
        if event._state.adding:
            event.created_by = event.created_by or by
        else:
            before = Event.objects.select_for_update().get(pk=event.pk)
            for field, label in NOTIFY_ON_CHANGE.items():
                old, new = getattr(before, field), getattr(event, field)
                if old != new:
                    changes.append(
                        {
                            "field": field,
                            "label": label,
                            "before": _display(old),
                            "after": _display(new),
                        }
                    )
            cancelled = Event.Status.CANCELLED
            if before.status != cancelled and event.status == cancelled:
                # The one status change crew must hear of; the others are bookkeeping.
                changes.insert(
                    0,
                    {
                        "field": "status",
                        "label": gettext_lazy("Status"),
                        "before": before.get_status_display(),
                        "after": event.get_status_display(),
                    },
                )
        event.save()
        if announce:
            event_announce(event=event, changes=changes)
    return changes


def event_announce(*, event: Event, changes: Changes) -> Changes:
    """Tell the event's crew what changed, in one message each, and move every calendar
    entry of the event on (SEQUENCE), once. Nothing when nothing changed."""
    if changes:
        with transaction.atomic():
            EventCrew.objects.filter(event=event).update(
                calendar_sequence=F("calendar_sequence") + 1
            )
            changes.told = event_notify_updated(event=event, changes=changes)
    return changes


def event_ensure_manager(*, event: Event, by: User | None = None) -> bool:
    """An event nobody manages has nobody to hear of a decline: its creator manages it until
    someone else is picked. True if the creator was made its manager."""
    if event.managers.exists():
        return False
    creator = event.created_by or by
    if creator is None or not creator.is_staff:
        return False
    event.managers.add(creator)
    return True


def event_notify_created(*, event: Event) -> int:
    """Alert the event's managers that it exists. Returns how many were told."""
    told = 0
    for manager in event.managers.exclude(email=""):
        notification_create(
            recipient=manager.email,
            user=manager,
            event=event,
            notification_type=EmailNotification.Type.EVENT_CREATED,
            context={"event": event},
        )
        told += 1
    return told


# What a text about a change says first: the call time is what crew act on.
_TEXT_ORDER = [
    "call_time",
    "role",
    "pickup",
    "run_of_show",
    "starts_at",
    "ends_at",
    "venue",
    "special_instructions",
    "venue_map_url",
]
TEXT_ROOM = 62


def event_changes_in_words(event: Event, changes: list[dict], call_time: datetime | None) -> str:
    """The changes as a text has room for them, most important first ("call Wed 30 Dec 16:30,
    soundcheck 15:00, +1 more"): never the call time hidden behind "+2 more"."""
    shown = sorted(
        (c for c in changes if c["field"] in _TEXT_ORDER),
        key=lambda c: _TEXT_ORDER.index(c["field"]),
    )
    call = call_time or event.call_time
    words = {
        "call_time": _("call %(when)s") % {"when": sms_when(call)},
        "starts_at": _("starts %(when)s") % {"when": sms_when(event.starts_at)},
        "ends_at": _("ends %(when)s") % {"when": sms_when(event.ends_at)},
        "venue": _("now at %(venue)s") % {"venue": sms_fit(event.venue, 32)},
        "special_instructions": _("new instructions"),
        "venue_map_url": _("new map link"),
    }

    def word(change: dict) -> str:
        if change["field"] == "run_of_show":
            return f"{sms_fit(change['label'].lower(), 16)} {change['after'] or _('dropped')}"
        if change["field"] == "role":
            return _("role %(role)s") % {"role": sms_fit(change["after"], 20)}
        if change["field"] == "pickup":
            return _("pickup %(pickup)s") % {
                "pickup": sms_fit(change["after"] or _("cancelled"), 24)
            }
        return words[change["field"]]

    # Kiswahili words are longer: the same text has less room for them.
    room = TEXT_ROOM - (12 if translation.get_language() == "sw" else 0)
    parts: list[str] = []
    for n, change in enumerate(shown):
        left = len(shown) - n - 1
        more = ", " + _("+%(count)s more") % {"count": left} if left else ""
        candidate = ", ".join([*parts, word(change)])
        if len(candidate + more) > room and parts:
            return ", ".join(parts) + ", " + _("+%(count)s more") % {"count": len(shown) - n}
        parts.append(word(change))
    return ", ".join(parts)


def event_changes_lazily(
    event: Event, changes: list[dict], call_time: datetime | None
) -> Callable[[], str]:
    """`event_changes_in_words` worked out when the text is rendered, so in the language of
    the member it is for (a template calls a callable it is given)."""
    return lambda: event_changes_in_words(event, changes, call_time)


def event_notify_updated(*, event: Event, changes: list[dict]) -> dict[str, int]:
    """Tell each member what changed on their channel. Returns how many heard of it by
    each way: {"email": n, "text": m} (a text's held email fallback is not counted)."""
    # Linked to each member's assignment so the portal shows the message beside it; each
    # member hears on their own channel (email and/or SMS).
    assignments = {
        a.user_id: a for a in EventCrew.objects.filter(event=event).select_related("role")
    }
    method = CANCEL if event.status == Event.Status.CANCELLED else PUBLISH
    told = {"email": 0, "text": 0}
    for member in event_affected_crew(event).select_related("profile"):
        assignment = assignments.get(member.pk)
        if assignment is not None:
            assignment.event = event
        sent = member_message(
            user=member,
            event=event,
            crew_assignment=assignment,
            notification_type=EmailNotification.Type.EVENT_UPDATED,
            context={
                "event": event,
                "changes": changes,
                "call_time": assignment.expected_call_time if assignment else None,
                "portal_url": absolute_url("attendance:crew_assignments"),
            },
            # The updated (or cancelled) calendar entry, for those who have one.
            attachments=(crew_calendar_file(assignment, method=method),) if assignment else (),
            sms_context={
                "what": event_changes_lazily(
                    event, changes, assignment.expected_call_time if assignment else None
                )
            },
        )
        if sent is not None:
            told["text" if isinstance(sent, SmsMessage) else "email"] += 1
    return told
