"""What providers post to us: Safaricom's STK callbacks, Paybill (C2B) validations and
confirmations and payout results, Africa's Talking's delivery reports and incoming texts,
Meta's WhatsApp statuses and messages.

Each is authenticated first (the secret token in its URL, or for WhatsApp the signature of
the body; a wrong one is a 404 or 403 with nothing stored), then handed whole to its inbox,
which stores it raw and commits it before anything else (`services/core/inbox.py`). Only
WhatsApp's webhook answers 5xx when storing fails, because Meta retries for a day or more:
Safaricom does not retry whatever we say, and AT's retries are undocumented, so for them a
failure to store is logged loudly and the reconcilers ask the provider later.
"""

import hmac
import logging
from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from attendance.middleware import client_address
from attendance.models import SmsCallback
from attendance.services.core.inbox import Received, read_body
from attendance.services.messaging.sms_inbox import sms_callback_receive
from attendance.services.messaging.whatsapp_inbox import whatsapp_webhook_receive
from attendance.services.payments import callback_receive
from attendance.services.payments.paybill_inbox import (
    paybill_confirmation_receive,
    paybill_validate,
)
from attendance.services.payments.reversal_inbox import reversal_result_receive
from attendance.services.payouts import payout_result_receive
from attendance.whatsapp.webhook import signature_ok

logger = logging.getLogger(__name__)
PAYOUT_KINDS = {"result", "timeout", "status", "balance"}
SMS_KINDS = {"delivery": SmsCallback.Kind.REPORT, "incoming": SmsCallback.Kind.INCOMING}


def _token_ok(sent: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def _receive(
    request: HttpRequest, what: str, limit: int, receive: Callable[..., Received], **kind: str
) -> Received | None:
    """Read up to one byte past the inbox's limit (to tell a body at it from one over it)
    and store it. None when even storing failed: logged, and left to the reconcilers."""
    body = read_body(request, limit + 1)
    try:
        return receive(body=body, remote_addr=client_address(request), **kind)
    except Exception:
        logger.exception("Could not store %s", what)
        return None


def _daraja_answer(received: Received | None, rejected: str) -> JsonResponse:
    if received is None:
        return JsonResponse({"ResultCode": 1, "ResultDesc": "Not stored"}, status=400)
    if received.http_status != 200:
        return JsonResponse(
            {"ResultCode": 1, "ResultDesc": f"Rejected: {rejected}"}, status=received.http_status
        )
    return JsonResponse({"ResultCode": 0, "ResultDesc": "Accepted"})


def _post_only() -> JsonResponse:
    response = JsonResponse(
        {"success": False, "error": {"code": "method_not_allowed", "message": "POST only."}},
        status=405,
    )
    response["Allow"] = "POST"
    return response


@csrf_exempt
def mpesa_callback(request: HttpRequest, token: str) -> HttpResponse:
    """Safaricom's STK callback. Callbacks are not signed: the unguessable token in the URL
    keeps forgeries out, and a payment is settled only against a checkout we created."""
    if not _token_ok(token, settings.MPESA_CALLBACK_TOKEN):
        logger.warning("M-Pesa callback with a wrong token from %s", client_address(request))
        raise Http404
    if request.method != "POST":
        return _post_only()
    received = _receive(
        request, "an M-Pesa callback", settings.MPESA_CALLBACK_MAX_BYTES, callback_receive
    )
    return _daraja_answer(received, "not an STK callback")


@csrf_exempt
def paybill(request: HttpRequest, kind: str, token: str) -> HttpResponse:
    """Daraja's C2B validation (answered at once: accept or reject) and confirmation (stored,
    then credited by the inbox). Not signed, as STK callbacks are not: the token decides."""
    if kind not in ("validation", "confirmation") or not _token_ok(token, settings.MPESA_C2B_TOKEN):
        logger.warning("Paybill notice with a wrong URL from %s", client_address(request))
        raise Http404
    if request.method != "POST":
        return _post_only()
    if kind == "validation":
        body = read_body(request, settings.MPESA_CALLBACK_MAX_BYTES + 1)
        try:
            return JsonResponse(paybill_validate(body=body, remote_addr=client_address(request)))
        except Exception:
            # Not even stored: say yes, as ResponseType would; only a confirmation credits.
            logger.exception("Could not store a Paybill validation")
            return JsonResponse({"ResultCode": "0", "ResultDesc": "Accepted"})
    received = _receive(
        request,
        "a Paybill confirmation",
        settings.MPESA_CALLBACK_MAX_BYTES,
        paybill_confirmation_receive,
    )
    if received is not None and received.http_status == 200:
        return JsonResponse({"ResultCode": 0, "ResultDesc": "Success"})
    return _daraja_answer(received, "not a Paybill confirmation")


@csrf_exempt
def payout_result(request: HttpRequest, kind: str, token: str) -> HttpResponse:
    """Daraja's B2C results, queue timeouts, Transaction Status and Account Balance answers."""
    if kind not in PAYOUT_KINDS or not _token_ok(token, settings.MPESA_B2C_RESULT_TOKEN):
        logger.warning("Payout result with a wrong URL from %s", client_address(request))
        raise Http404
    if request.method != "POST":
        return _post_only()
    received = _receive(
        request, "a payout result", settings.PAYOUT_MAX_BYTES, payout_result_receive, kind=kind
    )
    return _daraja_answer(received, "not a result")


@csrf_exempt
def reversal_result(request: HttpRequest, kind: str, token: str) -> HttpResponse:
    """Daraja's reversal results and queue timeouts, stored raw, then applied by the inbox."""
    if kind not in ("result", "timeout") or not _token_ok(
        token, settings.MPESA_REVERSAL_RESULT_TOKEN
    ):
        logger.warning("Reversal result with a wrong URL from %s", client_address(request))
        raise Http404
    if request.method != "POST":
        return _post_only()
    received = _receive(
        request, "a reversal result", settings.PAYOUT_MAX_BYTES, reversal_result_receive, kind=kind
    )
    return _daraja_answer(received, "not a result")


@csrf_exempt
def sms_callback(request: HttpRequest, kind: str, token: str) -> HttpResponse:
    """AT's delivery reports and incoming messages, answered 200 at once when stored."""
    if kind not in SMS_KINDS or not _token_ok(token, settings.SMS_CALLBACK_TOKEN):
        logger.warning("SMS callback with a wrong URL from %s", client_address(request))
        raise Http404
    if request.method != "POST":
        return HttpResponse("POST only.", status=405, content_type="text/plain")
    received = _receive(
        request,
        "an SMS callback",
        settings.SMS_CALLBACK_MAX_BYTES,
        sms_callback_receive,
        kind=SMS_KINDS[kind],
    )
    if received is None:
        return HttpResponse("Not stored", status=400, content_type="text/plain")
    return HttpResponse(
        "OK" if received.http_status == 200 else "Rejected",
        status=received.http_status,
        content_type="text/plain",
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request: HttpRequest) -> HttpResponse:
    """Meta's WhatsApp webhook. GET is the verification handshake (our verify token, answered
    with Meta's challenge); every POST must carry `X-Hub-Signature-256`, the HMAC of its raw
    bytes keyed with the app secret, checked before anything is stored (403 otherwise)."""
    if request.method == "GET":
        if request.GET.get("hub.mode") == "subscribe" and _token_ok(
            request.GET.get("hub.verify_token", ""), settings.WHATSAPP_VERIFY_TOKEN
        ):
            return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
        logger.warning(
            "WhatsApp handshake with a wrong verify token from %s", client_address(request)
        )
        return HttpResponse("Forbidden", status=403, content_type="text/plain")
    body = read_body(request, settings.WHATSAPP_WEBHOOK_MAX_BYTES + 1)
    if not signature_ok(
        body, request.headers.get("X-Hub-Signature-256", ""), settings.WHATSAPP_APP_SECRET
    ):
        logger.warning("WhatsApp webhook with a bad signature from %s", client_address(request))
        return HttpResponse("Forbidden", status=403, content_type="text/plain")
    try:
        whatsapp_webhook_receive(body=body, remote_addr=client_address(request))
    except Exception:
        # Meta retries anything but 200 for a day or more: this one comes back.
        logger.exception("Could not store a WhatsApp webhook")
        return HttpResponse("Not stored", status=503, content_type="text/plain")
    # 200 even for a signed body we cannot read: it is kept for staff, and a retry would not
    # read better.
    return HttpResponse("OK", content_type="text/plain")
