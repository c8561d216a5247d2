"""5,000 hostile bodies through the callback endpoint, genuine callbacks among them."""

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from attendance.models import LedgerEntry, MpesaCallback, MpesaPayment
from attendance.services.payments import callbacks_process_received
from tests.support.factories import PaymentFactory, UserFactory
from tests.support.mpesa_wire import success_callback

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
hostile_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["\u0000", "ws_CO_\u0000", "", " " * 10, "9" * 400, "NaN"]
)
items = st.lists(
    st.fixed_dictionaries(
        {
            "Name": st.sampled_from(
                ["Amount", "MpesaReceiptNumber", "TransactionDate", "PhoneNumber"]
            )
            | json_values
        },
        optional={"Value": json_values | hostile_text},
    ),
    max_size=6,
)
stk_callbacks = st.fixed_dictionaries(
    {},
    optional={
        "MerchantRequestID": json_values | hostile_text,
        "CheckoutRequestID": st.sampled_from(["ws_CO_FUZZ1", "ws_CO_FUZZ2"])
        | hostile_text
        | json_values,
        "ResultCode": st.sampled_from([0, 1, 1032, "0", "1037"]) | json_values,
        "ResultDesc": hostile_text | json_values,
        "CallbackMetadata": st.fixed_dictionaries({}, optional={"Item": items | json_values})
        | json_values,
    },
)
bodies = st.one_of(
    stk_callbacks.map(lambda cb: json.dumps({"Body": {"stkCallback": cb}}).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
    st.integers(1, 40_000).map(lambda depth: b"[" * depth + b"]" * depth),
)


@pytest.mark.postgres
def test_fuzzed_bodies_never_5xx_and_never_hold_back_a_genuine_callback(
    db, settings, django_capture_on_commit_callbacks
):
    url = f"/api/payments/callback/{settings.MPESA_CALLBACK_TOKEN}/"
    payments = [
        PaymentFactory(amount=100, user=UserFactory(), phone_number=f"2547111{n:05d}")
        for n in range(100)
    ]
    genuine = iter(payments)
    sent = {"count": 0, "5xx": []}
    client = Client()

    @hypothesis_settings(
        max_examples=5000,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=bodies)
    def post(body):
        sent["count"] += 1
        if sent["count"] % 50 == 0:
            payment = next(genuine, None)
            if payment is not None:
                ok = success_callback(
                    payment.checkout_request_id,
                    receipt=f"FZ{payment.pk:08d}",
                    phone=int(payment.phone_number),
                )
                assert client.post(url, ok, content_type="application/json").status_code == 200
        response = client.post(url, body, content_type="application/json")
        if response.status_code >= 500:
            sent["5xx"].append(body[:200])

    # Stored, not processed: as under a worker whose batch task has not run yet.
    with django_capture_on_commit_callbacks(execute=False):
        post()
    assert sent["count"] == 5000
    assert sent["5xx"] == []

    callbacks_process_received()  # one batch task, behind every one of those bodies

    assert not MpesaCallback.objects.filter(
        status__in=[MpesaCallback.Status.RECEIVED, MpesaCallback.Status.ERROR]
    ).exists()
    completed = MpesaPayment.objects.filter(status=MpesaPayment.Status.COMPLETED)
    assert completed.count() == 100
    assert LedgerEntry.objects.filter(kind="payment").count() == 100
