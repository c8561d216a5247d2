"""One vocabulary for a service refusing what a person asked.

Every domain's error derives from `ServiceError`: a message in the words of the person who
asked (never a traceback), a `code` and `http_status` for the JSON API, and optional
`details` (the field a form should mark, the object the refusal is about). Admin, the portal
and the API each turn it into what their user sees in one place (the admin site, the
portal's middleware, `api_endpoint`), so a view lets it through unless it has something to
add, such as which member of a batch it was about.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    code: str = "refused"
    http_status: int = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status

    def __str__(self) -> str:
        return self.message
