"""The links and codes an invitation carries: signed Confirm / Decline links for email, and for
SMS a short link (`/<code>/`) and a four-digit reply code. Reads and checks; crew_invite saves
the codes with the invitation.
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from attendance.models import Event, EventCrew
from attendance.services.core.errors import ServiceError
from attendance.services.core.urls import absolute_url

Status = EventCrew.Status
ANSWERS = ("confirm", "decline")
_ANSWER_SALT = "attendance.crew.answer"
_INVALID_LINK = gettext_lazy(
    "This link is not valid. Open the crew portal to answer the invitation."
)


class CrewLinkError(ServiceError):
    """An answer link that is forged, meant for something else, or too old."""

    def __init__(self, message: str, *, expired: bool = False):
        super().__init__(message, details={"expired": expired})
        self.expired = expired


# --- Signed answer links --------------------------------------------------------------------


def crew_answer_token(*, assignment: EventCrew, action: str) -> str:
    """A token that answers this one assignment with this one action, for a limited time."""
    if action not in ANSWERS:
        raise ValueError(action)
    return signing.dumps([assignment.pk, assignment.user_id, action], salt=_ANSWER_SALT)


def crew_answer_url(*, assignment: EventCrew, action: str) -> str:
    token = crew_answer_token(assignment=assignment, action=action)
    return absolute_url("attendance:crew_answer", assignment.pk, token)


def crew_answer_link_check(*, crew_id: int, token: str) -> tuple[EventCrew, str]:
    """The assignment and action a link answers. Raises CrewLinkError if forged or expired.

    The assignment id is signed, so a token cannot be replayed against another assignment by
    changing the id in the URL.
    """
    max_age = timedelta(days=settings.CREW_ANSWER_LINK_MAX_AGE_DAYS)
    try:
        pk, user_id, action = signing.loads(token, salt=_ANSWER_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise CrewLinkError(
            _("This link has expired. Open the crew portal to answer the invitation."), expired=True
        ) from None
    except (signing.BadSignature, ValueError, TypeError):
        raise CrewLinkError(str(_INVALID_LINK)) from None
    assignment = (
        EventCrew.objects.select_related("event", "role", "user")
        .filter(pk=pk, user_id=user_id)
        .first()
    )
    if pk != crew_id or action not in ANSWERS or assignment is None:
        raise CrewLinkError(str(_INVALID_LINK))
    return assignment, action


# --- Short links and reply codes (for SMS) ---------------------------------------------------

# No 0/O, 1/I/L: read off a phone screen and typed, they would be mistaken. Ten of these is
# about 49 bits: with every invitation of a busy year open, a guess hits one in 10^11.
_LINK_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LINK_CODE_LENGTH = 10


def give_codes(assignment: EventCrew) -> None:
    """The invitation's short-link code and reply code (set on the row; the caller saves)."""
    if not assignment.link_code:
        assignment.link_code = "".join(
            secrets.choice(_LINK_ALPHABET) for _n in range(LINK_CODE_LENGTH)
        )
    if not assignment.reply_code:
        # Unique among the member's open invitations; the sender's number does the rest.
        taken = set(
            EventCrew.objects.filter(user=assignment.user_id, status=Status.INVITED)
            .exclude(pk=assignment.pk)
            .values_list("reply_code", flat=True)
        )
        code = f"{secrets.randbelow(9000) + 1000}"
        while code in taken:
            code = f"{secrets.randbelow(9000) + 1000}"
        assignment.reply_code = code


def crew_short_url(*, assignment: EventCrew) -> str:
    return absolute_url("attendance:crew_short_link", assignment.link_code)


def crew_short_link_resolve(*, code: str) -> EventCrew | None:
    """The invitation a short link belongs to, while it can still be answered (open, not
    started, not cancelled, within the link's lifetime); None otherwise."""
    now = timezone.now()
    assignment = (
        EventCrew.objects.select_related("event")
        .filter(link_code=code, invitation_sent=True)
        .exclude(event__status=Event.Status.CANCELLED)
        .filter(event__starts_at__gt=now)
        .first()
    )
    if assignment is None or assignment.invitation_sent_at is None:
        return None
    max_age = timedelta(days=settings.CREW_ANSWER_LINK_MAX_AGE_DAYS)
    if assignment.invitation_sent_at + max_age <= now:
        return None
    return assignment
