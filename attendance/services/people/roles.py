"""The staff roles a new installation starts with, as Django groups.

Created once, when missing, after each migrate: from then on they are the admins' to edit in
admin (Groups), and a later migrate never puts back a permission they took away.
"""

from typing import Any

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
        "publicholiday": ("view",),
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
        # The law as the payroll applies it, and how each member is engaged: Finance only.
        "statutoryrates": KEEP,
        "payeband": ALL,
        "statutoryprofile": KEEP,
        "publicholiday": ALL,
        "statutorydeduction": ("view",),
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


def role_grant_existing(apps: Any, group_name: str, codenames: list[str]) -> None:
    """For a data migration: an existing role gets the permissions a new feature brought, once.
    Roles are made only where missing (roles_ensure), so without this an installation that had
    the role before would not have them; an admin who removes them later keeps them removed.
    `apps` is the migration's historical registry."""
    from django.contrib.auth.management import create_permissions
    from django.contrib.contenttypes.management import create_contenttypes

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name=group_name).first()
    if group is None:
        return  # a new installation: the roles are made after migrate, with these in them
    # Permissions are made after migrate too: make the app's now, so they can be granted.
    config = apps.get_app_config("attendance")
    config.models_module = True
    create_contenttypes(config, apps=apps, verbosity=0)
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="attendance", codename__in=codenames)
    )


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
