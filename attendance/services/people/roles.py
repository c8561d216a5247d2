"""The staff roles a new installation starts with, as Django groups.

Created once, when missing, after each migrate: from then on they are the admins' to edit in
admin (Groups), and a later migrate never puts back a permission they took away.
"""

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from django.db.models import Q, QuerySet

ALL = ("view", "add", "change", "delete")
# No delete for events and attendance: deleting an event takes its attendance (the hours crew
# are paid for) with it. An event is cancelled through its status instead.
KEEP = ("view", "add", "change")

# group -> {"app.model": actions}; a permission's codename is "<action>_<model>", or the action
# itself when it names a custom permission ("view_dashboard"). Viewing users is what the
# admin's member pickers (autocomplete) ask for.
ROLES = {
    "Event managers": {
        "auth.user": ("view",),
        "event": KEEP,
        "eventcrew": ALL,
        "eventrolerequirement": ALL,
        "crewrole": KEEP,
        "attendance": KEEP,
        "attendancecorrection": ("view",),
        "profile": ("view",),
        "emailnotification": ("view",),
        "bulkjob": ("view",),
        "alert": ("view", "view_dashboard"),
        "timesheetline": ("view", "change", "approve_timesheetline"),
    },
    "Finance": {
        "auth.user": ("view",),
        "profile": ("view", "change"),
        "ledgerentry": ("view", "add"),
        "mpesapayment": ("view", "request", "review"),
        "mpesacallback": ("view",),
        "paybillpayment": ("view", "assign"),
        "reversal": ("view", "request"),
        "reversalresult": ("view",),
        "paybillnotice": ("view",),
        "statementimport": ("view", "reconcile"),
        "statementrow": ("view",),
        "emailnotification": ("view",),
        "bulkjob": ("view",),
        "alert": ("view", "view_dashboard"),
        "timesheetline": ("view",),
        "payrun": ("view", "add", "delete", "approve_payrun"),
        "payout": ("view", "submit_payout"),
        "payoutresult": ("view",),
    },
}


def roles_ensure() -> None:
    with transaction.atomic():
        for name, grants in ROLES.items():
            group, created = Group.objects.get_or_create(name=name)
            if not created:
                continue
            wanted = Q(pk__in=[])
            for model, actions in grants.items():
                app_label, _, model = model.rpartition(".")
                wanted |= Q(
                    content_type__app_label=app_label or "attendance",
                    codename__in=[
                        action if "_" in action else f"{action}_{model}" for action in actions
                    ],
                )
            group.permissions.set(Permission.objects.filter(wanted))


def staff_with_permission(codename: str) -> QuerySet[User]:
    """Active staff who hold `attendance.<codename>` (directly, by a group, or as superusers):
    the people a message about work that needs that permission should reach."""
    permission = Permission.objects.filter(
        content_type__app_label="attendance", codename=codename
    ).first()
    wanted = Q(is_superuser=True)
    if permission is not None:
        wanted |= Q(user_permissions=permission) | Q(groups__permissions=permission)
    return (
        User.objects.filter(is_active=True, is_staff=True).filter(wanted).distinct().order_by("pk")
    )
