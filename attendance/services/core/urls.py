"""Links that leave the site (in emails, texts, calendar feeds): one way to make them."""

from typing import Any

from django.conf import settings
from django.urls import reverse


def absolute_url(viewname: str, *args: Any, **kwargs: Any) -> str:
    """`SITE_URL` and the view's path: what a link in a message must be."""
    path = reverse(viewname, args=args or None, kwargs=kwargs or None)
    return settings.SITE_URL.rstrip("/") + path
