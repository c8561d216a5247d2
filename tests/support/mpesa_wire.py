"""Daraja callback bodies exactly as Safaricom sends them (MPESA_CRM_IMPLEMENTATION.md)."""

import json


def success_callback(
    checkout, *, amount=100, receipt="NLJ7RT61SV", phone=254712345678, paid_at=20261126102115
):
    return json.dumps(
        {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "29115-34620561-1",
                    "CheckoutRequestID": checkout,
                    "ResultCode": 0,
                    "ResultDesc": "The service request is processed successfully.",
                    "CallbackMetadata": {
                        "Item": [
                            {"Name": "Amount", "Value": float(amount)},
                            {"Name": "MpesaReceiptNumber", "Value": receipt},
                            {"Name": "Balance"},
                            {"Name": "TransactionDate", "Value": paid_at},
                            {"Name": "PhoneNumber", "Value": phone},
                        ]
                    },
                }
            }
        }
    )


def failure_callback(checkout, code=1032, desc="Request cancelled by user"):
    return json.dumps(
        {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "29115-34620561-1",
                    "CheckoutRequestID": checkout,
                    "ResultCode": code,
                    "ResultDesc": desc,
                }
            }
        }
    )


def paybill_body(
    receipt,
    *,
    amount="500.00",
    account="",
    msisdn="2547 ***** 126",
    when="20261205121325",
    first_name="NICHOLAS",
):
    """A C2B confirmation (or validation) body as Daraja's v2 sample shapes it."""
    return json.dumps(
        {
            "TransactionType": "Pay Bill",
            "TransID": receipt,
            "TransTime": when,
            "TransAmount": amount,
            "BusinessShortCode": "174379",
            "BillRefNumber": account,
            "InvoiceNumber": "",
            "OrgAccountBalance": "25000.00",
            "ThirdPartyTransID": "",
            "MSISDN": msisdn,
            "FirstName": first_name,
            "MiddleName": "",
            "LastName": "",
        }
    )


def post_body(url, body):
    """POST one body as Safaricom does (JSON, its own connection); the HTTP status."""
    import requests

    with requests.Session() as session:
        return session.post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=30
        ).status_code
