"""Crew who step forward: offers for open roles, and a confirmed member's request to be replaced.

Both end in a manager's decision; both tell the member the answer. The places of a role are
counted and locked by the same rules as an invitation's answer (services/crew/assignments.py), so an
accepted offer can never over-fill a role.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from attendance.models import (
    CrewRole,
    EmailNotification,
    Event,
    EventCrew,
    EventRoleRequirement,
    ReplacementRequest,
    Unavailability,
    member_name,
)
from attendance.services.core.audit import AuditEvent, audit_record
from attendance.services.core.urls import absolute_url
from attendance.services.crew.assignments import (
    CrewError,
    RoleFilled,
    crew_confirm,
    crew_decline,
    crew_invite,
)
from attendance.services.crew.availability import event_days
from attendance.services.crew.notices import crew_calendar_cancel, event_contacts_tell
from attendance.services.messaging.channels import member_message
from attendance.services.messaging.email import Attachment

Status = EventCrew.Status
# How far ahead crew see open roles, and how many at most.
OPEN_ROLES_DAYS = 60
OPEN_ROLES_SHOWN = 30


@dataclass(frozen=True)
class OpenRole:
    event: Event
    role: CrewRole
    places: int


def open_roles_for(member: User, *, now: datetime | None = None) -> list[OpenRole]:
    """Roles still to fill on upcoming events this member could work: a role they do (any role
    if they have named none), not already on that event, free and available that day."""
    now = now or timezone.now()
    requirements = (
        EventRoleRequirement.objects.filter(
            event__starts_at__gt=now,
            event__starts_at__lt=now + timedelta(days=OPEN_ROLES_DAYS),
            event__status__in=[Event.Status.PLANNED, Event.Status.CONFIRMED],
        )
        .exclude(event__crew__user=member)
        .annotate(
            spoken_for=Count(
                "event__crew",
                filter=Q(event__crew__role=F("role"))
                & (
                    Q(event__crew__status__in=[Status.CONFIRMED, Status.OFFERED])
                    | Q(event__crew__status=Status.INVITED, event__crew__invitation_sent=True)
                ),
            )
        )
        .filter(needed__gt=F("spoken_for"))
        .select_related("event", "role")
        .order_by("event__starts_at", "role__sort_order")
    )
    own_roles = set(member.profile.roles.values_list("pk", flat=True))
    if own_roles:
        requirements = requirements.filter(role_id__in=own_roles)
    # The member's own days off and booked hours, read once and compared here: one query
    # each, however many roles are open.
    away = list(
        Unavailability.objects.filter(
            user=member, ends_on__gte=timezone.localdate(now)
        ).values_list("starts_on", "ends_on")
    )
    booked = [
        (min(a.expected_call_time, a.event.starts_at), a.event.ends_at)
        for a in EventCrew.objects.filter(
            user=member, status=Status.CONFIRMED, event__ends_at__gt=now
        )
        .exclude(event__status=Event.Status.CANCELLED)
        .select_related("event")
    ]
    found = []
    for requirement in requirements[: OPEN_ROLES_SHOWN * 4]:
        event = requirement.event
        first, last = event_days(event)
        if any(start <= last and end >= first for start, end in away):
            continue
        start = min(event.call_time, event.starts_at)
        if any(b_start < event.ends_at and b_end > start for b_start, b_end in booked):
            continue
        found.append(OpenRole(event, requirement.role, requirement.needed - requirement.spoken_for))
        if len(found) == OPEN_ROLES_SHOWN:
            break
    return found


def crew_offer(*, member: User, event: Event, role: CrewRole) -> EventCrew:
    """The member offers to work the role; the event's managers are asked to decide."""
    if not any(o.event.pk == event.pk and o.role.pk == role.pk for o in open_roles_for(member)):
        raise CrewError(
            _("%(role)s at %(event)s is not open to you any more.")
            % {"role": role, "event": event.name}
        )
    try:
        with transaction.atomic():
            offer = EventCrew.objects.create(
                event=event,
                user=member,
                role=role,
                status=Status.OFFERED,
                responded_at=timezone.now(),
            )
    except IntegrityError:
        raise CrewError(
            _("You are already on the crew of %(event)s.") % {"event": event.name}
        ) from None
    _tell_managers(event, "offer", offer=offer)
    return offer


def crew_offer_accept(*, assignment: EventCrew, by: User | None = None) -> EventCrew:
    """The manager takes the offer: the member is confirmed (if a place is still free; else
    RoleFilled, and they wait on standby) and told."""
    filled: RoleFilled | None = None
    with transaction.atomic():
        updated = EventCrew.objects.filter(pk=assignment.pk, status=Status.OFFERED).update(
            status=Status.INVITED, assigned_by=by, updated_at=timezone.now()
        )
        if not updated:
            raise CrewError(_("This offer has already been answered."))
        current = EventCrew.objects.select_related("event", "role", "user").get(pk=assignment.pk)
        try:
            crew_confirm(assignment=current)
        except RoleFilled as error:
            filled = error  # kept on standby (committed below), and the manager is told why
        else:
            _tell_member(current, accepted=True)
    if filled is not None:
        raise filled
    return current


def crew_offer_decline(*, assignment: EventCrew, by: User | None = None, note: str = "") -> None:
    """The manager does not need them this time: the offer goes, and the member is told."""
    with transaction.atomic():
        offer = (
            EventCrew.objects.select_for_update()
            .select_related("event", "role", "user")
            .filter(pk=assignment.pk, status=Status.OFFERED)
            .first()
        )
        if offer is None:
            raise CrewError(_("This offer has already been answered."))
        audit_record(
            AuditEvent.OFFER_DECLINED,
            actor=by,
            target=offer.event,
            details={"member": member_name(offer.user), "role": str(offer.role), "note": note},
        )
        _tell_member(offer, accepted=False, note=note, link=False)
        offer.delete()


# --- Replacement requests ------------------------------------------------------------------


def replacement_candidates(assignment: EventCrew) -> list[User]:
    """Colleagues a member may propose: they do the role and are not on the event (or only on
    its standby list)."""
    on_event = EventCrew.objects.filter(event=assignment.event_id).exclude(status=Status.STANDBY)
    return list(
        User.objects.filter(is_active=True, profile__roles=assignment.role_id)
        .exclude(pk__in=on_event.values("user_id"))
        .order_by("first_name", "last_name", "username")[:200]
    )


def crew_ask_replacement(
    *, assignment: EventCrew, proposed: User | None = None, reason: str = ""
) -> ReplacementRequest:
    """A confirmed member asks to be replaced; they stay confirmed until a manager approves."""
    if assignment.status != Status.CONFIRMED:
        raise CrewError(_("Only confirmed work can be handed over."))
    if assignment.event.starts_at <= timezone.now():
        raise CrewError(
            _("%(event)s has started: call the event manager.") % {"event": assignment.event.name}
        )
    if proposed is not None and proposed not in replacement_candidates(assignment):
        raise CrewError(
            _("%(name)s cannot take this role on this event.") % {"name": member_name(proposed)}
        )
    try:
        with transaction.atomic():
            request = ReplacementRequest.objects.create(
                assignment=assignment, proposed=proposed, reason=" ".join(reason.split())[:300]
            )
    except IntegrityError:
        raise CrewError(_("You have already asked; the event manager will answer.")) from None
    _tell_managers(assignment.event, "replacement", offer=assignment, request=request)
    return request


def crew_replacement_decide(
    *, request: ReplacementRequest, approve: bool, by: User, note: str = ""
) -> list[EventCrew]:
    """Approve: the colleague proposed (or, with none, the next standby) is invited, and the
    member is taken off as having declined. Refuse: they stay on. Returns who was invited."""
    invited: list[EventCrew] = []
    with transaction.atomic():
        current = (
            ReplacementRequest.objects.select_for_update()
            .select_related("assignment__event", "assignment__role", "assignment__user")
            .get(pk=request.pk)
        )
        if current.status != ReplacementRequest.Status.PENDING:
            raise CrewError(_("This request has already been answered."))
        assignment = current.assignment
        current.status = (
            ReplacementRequest.Status.APPROVED if approve else ReplacementRequest.Status.REFUSED
        )
        current.decided_by, current.decided_at = by, timezone.now()
        current.decision_note = note[:300]
        current.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        if approve:
            if current.proposed is not None:
                invited.append(_invite_colleague(assignment, current.proposed, by))
            # Declining as the member: the calendar cancel, the attendance list and, with no
            # colleague named, the next standby all follow the one path.
            crew_decline(
                assignment=assignment,
                reason=f"Replaced (approved by {member_name(by)})",
                via="replaced",
            )
            invited += list(
                EventCrew.objects.filter(
                    event=assignment.event_id,
                    role=assignment.role_id,
                    status=Status.INVITED,
                    invitation_sent_at__gte=current.decided_at,
                ).exclude(pk__in=[i.pk for i in invited])
            )
        # One message: the answer, carrying the calendar cancel when they are off.
        _tell_member(
            assignment,
            accepted=approve,
            note=note,
            request=current,
            attachments=(crew_calendar_cancel(assignment),) if approve else (),
        )
    return invited


def _invite_colleague(assignment: EventCrew, colleague: User, by: User) -> EventCrew:
    existing = EventCrew.objects.filter(event=assignment.event_id, user=colleague).first()
    if existing is not None and existing.status == Status.STANDBY:
        EventCrew.objects.filter(pk=existing.pk).update(
            status=Status.INVITED, role=assignment.role, standby_since=None
        )
        existing.refresh_from_db()
        replacement = existing
    elif existing is not None:
        raise CrewError(f"{member_name(colleague)} is already on this event.")
    else:
        replacement = EventCrew.objects.create(
            event=assignment.event, user=colleague, role=assignment.role, assigned_by=by
        )
    crew_invite(assignment=replacement)
    return replacement


# --- Messages ------------------------------------------------------------------------------


def _tell_managers(event: Event, what: str, **context: object) -> None:
    event_contacts_tell(
        event,
        EmailNotification.Type.CREW_STAFFING,
        {
            "event": event,
            "what": what,
            "board_url": absolute_url("admin:attendance_event_board", event.pk),
            **context,
        },
    )


def _tell_member(
    assignment: EventCrew,
    *,
    accepted: bool,
    note: str = "",
    request: ReplacementRequest | None = None,
    link: bool = True,
    attachments: tuple[Attachment, ...] = (),
) -> None:
    member_message(
        user=assignment.user,
        event=assignment.event,
        notification_type=EmailNotification.Type.CREW_OFFER_ANSWER,
        context={
            "assignment": assignment,
            "event": assignment.event,
            "role": assignment.role,
            "accepted": accepted,
            "note": note,
            "request": request,
            "portal_url": absolute_url("attendance:crew_assignments"),
        },
        crew_assignment=assignment if link else None,
        attachments=attachments,
    )


def crew_leave_waiting(*, assignment: EventCrew) -> str:
    """The member no longer waits for a place (standby) or withdraws an offer: the row goes,
    as if they had never waited. Returns what they left ("standby" or "offer")."""
    with transaction.atomic():
        current = EventCrew.objects.select_for_update(of=("self",)).filter(pk=assignment.pk)
        row = current.select_related("event").first()
        if row is None or row.status not in (Status.STANDBY, Status.OFFERED):
            raise CrewError(_("You are not waiting for a place on this event any more."))
        left = "standby" if row.status == Status.STANDBY else "offer"
        row.delete()
    return left
