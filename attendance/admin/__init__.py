"""Admin, one module per domain. Importing them registers their ModelAdmins."""

from . import crew, events, notifications, payments, people  # noqa: F401
