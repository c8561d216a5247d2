"""Admin, one module per domain. Importing them registers their ModelAdmins."""

from . import events, notifications, people  # noqa: F401
