"""Admin, one module per domain. Importing them registers their ModelAdmins."""

from . import events, people  # noqa: F401
