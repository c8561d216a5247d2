"""Admin, one module per domain. Importing them registers their ModelAdmins."""

from . import attendance, crew, event_crew, events, notifications, payments, people  # noqa: F401
