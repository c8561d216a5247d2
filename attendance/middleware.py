"""Request middleware of our own."""

from auditlog.middleware import AuditlogMiddleware
from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    """The client's IP address: behind our proxy, the one it appended to X-Forwarded-For.

    Only the last entry is the proxy's own observation; earlier ones are whatever the client
    sent (auditlog's default takes the first, which anyone can forge).
    """
    remote = request.META.get("REMOTE_ADDR")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and remote in settings.TRUSTED_PROXIES:
        return forwarded.split(",")[-1].strip() or remote
    return remote


class AuditContextMiddleware(AuditlogMiddleware):
    """auditlog's middleware, with an address that cannot be forged.

    Anonymous requests (Safaricom's callbacks, the crew's answer links) skip it: auditlog
    connects and disconnects a signal receiver per request, and only staff and members write
    audited rows.
    """

    @staticmethod
    def _get_remote_addr(request):
        return client_address(request)

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        return super().__call__(request)
