"""The members' JSON API for M-Pesa payments (webhooks: webhooks.py; health: health.py).

Errors: {"success": false, "error": {"code", "message"}}.
"""

import json
import logging
from collections.abc import Callable
from functools import wraps

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404

from attendance.models import MpesaPayment
from attendance.services.core.errors import ServiceError
from attendance.services.payments import (
    payment_explanation,
    payment_request_stk_push,
)
from attendance.services.payments.amounts import prompt_amount_for
from attendance.services.people.two_factor import staff_needs_second_factor

logger = logging.getLogger(__name__)


def error_response(code: str, message: str, status: int, **extra: object) -> JsonResponse:
    """The API's one error shape; `extra` (say, the payment's id) sits beside `error`."""
    return JsonResponse(
        {"success": False, "error": {"code": code, "message": message}, **extra}, status=status
    )


def api_endpoint(
    *methods: str, login: bool = True
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A JSON endpoint: every failure is answered in the error shape, never an HTML page.

    Checks the method (405 with Allow) and the login (401), answers a service's refusal
    (ServiceError) with its code, words and status, and turns an unexpected exception
    into a logged 500 whose message says nothing was charged (the services commit a payment
    row before any money can move, so a failed request never leaves money half moved).
    """

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = error_response("method_not_allowed", f"Use {' or '.join(methods)}.", 405)
                response["Allow"] = ", ".join(methods)
                return response
            if login and not request.user.is_authenticated:
                return error_response("not_authenticated", "Log in first.", 401)
            try:
                return view(request, *args, **kwargs)
            except ServiceError as refused:  # a service said no, in the caller's words
                return error_response(
                    refused.code, refused.message, refused.http_status, **refused.details
                )
            except Http404:
                return error_response("not_found", "Not found.", 404)
            except PermissionDenied as denied:
                return error_response("forbidden", str(denied) or "Not allowed.", 403)
            except Exception:
                logger.exception("API %s failed", request.path)
                return error_response(
                    "server_error",
                    "Something went wrong on our side and nothing was charged. "
                    "Please try again in a minute.",
                    500,
                )

        return wrapper

    return decorate


def payment_json(payment: MpesaPayment) -> dict:
    return {
        "payment_id": payment.pk,
        "status": payment.status,
        "status_display": payment.get_status_display(),
        "amount": str(payment.amount),
        "receipt_number": payment.receipt_number or None,
        "completed_at": payment.completed_at.isoformat() if payment.completed_at else None,
        "result_description": payment.result_description,
        "explanation": payment_explanation(payment),
        "needs_review": payment.needs_review,
    }


@api_endpoint("POST")
def request_payment(request):
    """Send an M-Pesa prompt. Members pay for themselves; staff may name `user_id`."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return error_response("invalid_json", "The body must be JSON.", 400)
    if not isinstance(body, dict):
        return error_response("invalid_json", "The body must be a JSON object.", 400)
    payer = request.user
    if body.get("user_id") not in (None, "", request.user.pk):
        if not (request.user.is_staff and request.user.has_perm("attendance.request_mpesapayment")):
            return error_response(
                "forbidden", "Only staff allowed to collect payments may prompt others.", 403
            )
        if staff_needs_second_factor(request.user):
            return error_response(
                "second_factor_required",
                "Prompting others needs your second factor: open /admin/ and give a code first.",
                403,
            )
        try:
            payer = get_user_model().objects.select_related("profile").get(pk=int(body["user_id"]))
        except (ValueError, TypeError, get_user_model().DoesNotExist):
            return error_response("unknown_user", "No such member.", 404)
    amount = body.get("amount")
    if amount is None:
        # No amount: the payer's balance, by the same rule as the portal and the admin.
        amount = prompt_amount_for(payer.profile.balance)
        if amount is None:
            return error_response("nothing_owed", "Nothing is owed: give an amount.", 400)
    if isinstance(amount, bool):
        return error_response("invalid_amount", "Give the amount in whole shillings.", 400)
    key = request.headers.get("Idempotency-Key", "").strip()[:100] or None
    payment, replayed = payment_request_stk_push(
        payer=payer,
        amount=amount,
        purpose=str(body.get("purpose") or ""),
        phone=str(body["phone"]) if body.get("phone") else None,
        requested_by=request.user,
        idempotency_key=key,
    )
    return JsonResponse(
        {
            "success": True,
            "payment_id": payment.pk,
            "checkout_request_id": payment.checkout_request_id,
            "status": payment.status,
            "replayed": replayed,
            "message": "Check your phone and enter your M-Pesa PIN.",
        },
        status=200 if replayed else 201,
    )


@api_endpoint("GET")
def payment_status(request):
    try:
        payment_id = int(request.GET.get("payment_id", ""))
    except ValueError:
        return error_response("invalid_payment_id", "payment_id must be a number.", 400)
    payments = MpesaPayment.objects.all()
    if not (request.user.is_staff and request.user.is_verified()):
        # Someone else's payment: 404. Staff see every payment once past their second factor.
        payments = payments.filter(user=request.user)
    try:
        payment = get_object_or_404(payments, pk=payment_id)
    except Http404:
        return error_response("not_found", "No such payment.", 404)
    return JsonResponse({"success": True, **payment_json(payment)})
