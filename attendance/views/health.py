"""Liveness and readiness, for load balancers and operators."""

import hmac
import ipaddress

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from attendance import metrics as prometheus
from attendance.middleware import client_address
from attendance.services.ops.health import readiness

from .api import api_endpoint


@api_endpoint("GET", "HEAD", login=False)
def health(request):
    """Liveness: the process answers. No database, so a busy database never restarts it.

    Also the bare-view baseline of the callback benchmark."""
    return JsonResponse({"ok": True})


def _may_see_readiness(request: HttpRequest) -> bool:
    token = settings.READINESS_TOKEN
    sent = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
    if token and sent and hmac.compare_digest(sent.encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(client_address(request) or "")
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.READINESS_NETWORKS
    )


@api_endpoint("GET", "HEAD", login=False)
def ready(request):
    """Readiness: can this instance do its work (database, Redis, broker, periodic jobs on
    time, nothing stuck). 503 when anything is wrong, with what. Only for the internal
    networks or the readiness token: to anyone else it is not there (404)."""
    if not _may_see_readiness(request):
        raise Http404("Not found")
    checks = readiness()
    ok = all(check.ok for check in checks.values())
    body = {
        "ok": ok,
        "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in checks.items()},
    }
    response = JsonResponse(body, status=200 if ok else 503)
    response["Cache-Control"] = "no-store"
    return response


@api_endpoint("GET", login=False)
def metrics(request):
    """Prometheus metrics of this node (attendance/metrics.py). Like readiness: only for the
    internal networks or the readiness token; to anyone else it is not there (404)."""
    if not _may_see_readiness(request):
        raise Http404("Not found")
    body, content_type = prometheus.render()
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
