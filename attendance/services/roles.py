"""The staff roles a new installation starts with, as Django groups.

Created once, when missing, after each migrate: from then on they are the admins' to edit in
admin (Groups), and a later migrate never puts back a permission they took away.
"""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

ALL = ("view", "add", "change", "delete")

# group -> {model: actions}; a permission's codename is "<action>_<model>".
ROLES = {
    "Event managers": {
        "event": ALL,
        "eventcrew": ALL,
        "eventrolerequirement": ALL,
        "crewrole": ALL,
        "attendance": ALL,
        "attendancecorrection": ("view",),
        "profile": ("view",),
        "emailnotification": ("view",),
    },
    "Finance": {
        "profile": ("view", "change"),
        "ledgerentry": ("view", "add"),
        "mpesapayment": ("view", "request", "review"),
        "mpesacallback": ("view",),
        "emailnotification": ("view",),
    },
}


def roles_ensure() -> None:
    with transaction.atomic():
        for name, grants in ROLES.items():
            group, created = Group.objects.get_or_create(name=name)
            if not created:
                continue
            codenames = [
                f"{action}_{model}" for model, actions in grants.items() for action in actions
            ]
            permissions = Permission.objects.filter(
                content_type__app_label="attendance", codename__in=codenames
            )
            group.permissions.set(permissions)
